"""The results partials of a send, as a broadcast's pages render them: figures in their units,
what is held or waiting shown apart, and a GET that never writes."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import Broadcast, MessageStatus, utcnow
from app.sends.stats import finish_sends
from tests.factories import BroadcastFactory, ContactFactory, OutboundMessageFactory
from tests.support import HX, by_id


def fact(text: str, label: str, value: int) -> bool:
    """`label` followed by `value` in a list of facts (a <dt> and its <dd>)."""
    return re.search(rf"{re.escape(label)}\s*{value}\b", text) is not None


def progress(client, broadcast: Broadcast) -> str:
    response = client.get(f"/broadcasts/{broadcast.id}/progress", headers=HX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_sending_broadcast_shows_held_first_messages_and_waiting_follow_ups_apart(
    viewer_client,
):
    broadcast = BroadcastFactory(sending=True)
    opening = utcnow().replace(microsecond=0) + timedelta(hours=3)
    held = ContactFactory.create_batch(2)
    for person in held:
        OutboundMessageFactory(
            broadcast=broadcast,
            contact=person,
            status=MessageStatus.SCHEDULED,
            scheduled_for=opening,
        )
    first = OutboundMessageFactory(broadcast=broadcast, delivered=True)
    OutboundMessageFactory(broadcast=broadcast, contact=first.contact, follow_up=True)
    OutboundMessageFactory(broadcast=broadcast)  # queued
    db.session.commit()

    html = progress(viewer_client, broadcast)
    bar = by_id(html, f"broadcasts-progress-bar-{broadcast.id}")
    assert 'value="1"' in bar and 'max="4"' in bar  # first messages (people), not messages
    text = by_id(html, f"broadcasts-progress-text-{broadcast.id}").text
    assert "1 of 4 first messages done" in text and "1 to go" in text
    held_text = " ".join(by_id(html, f"broadcasts-held-{broadcast.id}").text.split())
    assert "2 messages held by quiet hours until 9:00 AM recipients' time" in held_text
    assert "(2 first messages); the first go out" in held_text
    head = by_id(html, f"broadcasts-progress-head-{broadcast.id}").text
    assert "is sending" in head  # one first message is still queued
    assert (
        "1 follow-up waiting for its time"
        in by_id(html, f"broadcasts-follow-ups-waiting-{broadcast.id}").text
    )
    rate = by_id(html, f"broadcasts-delivery-rate-{broadcast.id}")
    assert "100.0 %" in rate  # the one final receipt; the others are not counted against it


def test_a_finished_broadcast_with_a_follow_up_never_reads_over_100_percent(viewer_client):
    broadcast = BroadcastFactory(sending=True)
    people = ContactFactory.create_batch(50)
    for person in people:
        OutboundMessageFactory(broadcast=broadcast, contact=person, delivered=True)
        OutboundMessageFactory(
            broadcast=broadcast, contact=person, step="second", delivered=True, scheduled_for=None
        )
    db.session.commit()
    html = viewer_client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    assert f'id="broadcasts-funnel-{broadcast.id}"' not in html  # still sending
    stats = by_id(html, f"broadcasts-stats-{broadcast.id}").text
    assert re.search(r"50\s*recipients", stats) and re.search(r"50\s*first messages sent", stats)
    assert "100.0 %" in stats and "200" not in stats
    assert finish_sends() == 1
    html = viewer_client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    funnel = by_id(html, f"broadcasts-funnel-{broadcast.id}").text
    assert "First message delivered 50 100.0 % of recipients" in " ".join(funnel.split())
    assert "%" in funnel and "200" not in funnel
    messages = by_id(html, f"broadcasts-messages-{broadcast.id}").text
    assert fact(messages, "Accepted by the provider", 100) and fact(messages, "Delivered", 100)
    follow_ups = by_id(html, f"broadcasts-follow-ups-{broadcast.id}").text
    assert fact(follow_ups, "Accepted", 50) and fact(follow_ups, "Delivered", 50)


def test_viewing_a_send_never_writes(viewer_client):
    broadcast = BroadcastFactory(sending=True)
    OutboundMessageFactory(broadcast=broadcast, delivered=True)
    db.session.commit()
    before = db.session.execute(
        sa.select(Broadcast.status, Broadcast.stats, Broadcast.stats_updated_at).where(
            Broadcast.id == broadcast.id
        )
    ).one()
    for path in ("", "/progress", "/recipients", "/outcomes.csv"):
        assert viewer_client.get(f"/broadcasts/{broadcast.id}{path}", headers=HX).status_code == 200
    db.session.expire_all()
    after = db.session.execute(
        sa.select(Broadcast.status, Broadcast.stats, Broadcast.stats_updated_at).where(
            Broadcast.id == broadcast.id
        )
    ).one()
    assert after == before and after.status == "sending"


def test_the_recipients_table_says_how_long_ago_each_message_went_with_the_exact_time_on_hover(
    viewer_client,
):
    broadcast = BroadcastFactory(sending=True)
    row = OutboundMessageFactory(
        broadcast=broadcast,
        contact=ContactFactory(),
        status=MessageStatus.SENT,
        sent_at=utcnow() - timedelta(hours=3, minutes=2),
    )
    db.session.commit()
    html = viewer_client.get(f"/broadcasts/{broadcast.id}/recipients", headers=HX)
    cell = by_id(html.get_data(as_text=True), f"broadcasts-recipient-{row.id}")
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+ E[SD]T">3 hours ago</time>', cell)
    assert '<span class="cell-label">Sent</span>' in cell


def test_the_recipients_table_and_its_filter_show_statuses_in_words_and_keep_the_stored_names(
    viewer_client,
):
    broadcast = BroadcastFactory(sending=True)
    unknown, undelivered = (
        OutboundMessageFactory(broadcast=broadcast, contact=ContactFactory(), status=status)
        for status in (MessageStatus.UNKNOWN, MessageStatus.UNDELIVERED)
    )
    db.session.commit()
    html = viewer_client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    # The badge says it in words; its colour (the class) is still the stored status's.
    row = by_id(html, f"broadcasts-recipient-{unknown.id}")
    assert '<span class="badge badge--unknown">outcome unknown</span>' in row
    row = by_id(html, f"broadcasts-recipient-{undelivered.id}")
    assert '<span class="badge badge--undelivered">not delivered</span>' in row
    # The filter reads in words and sends the stored name.
    status_filter = by_id(html, "broadcasts-recipients-status")
    assert '<option value="undelivered">Not delivered</option>' in status_filter
    assert '<option value="unknown">Outcome unknown</option>' in status_filter
    only = viewer_client.get(
        f"/broadcasts/{broadcast.id}/recipients?status=undelivered", headers=HX
    )
    rows = only.get_data(as_text=True)
    assert f"broadcasts-recipient-{undelivered.id}" in rows
    assert f"broadcasts-recipient-{unknown.id}" not in rows
    # The CSV of outcomes keeps the stored names.
    csv = viewer_client.get(f"/broadcasts/{broadcast.id}/outcomes.csv").get_data(as_text=True)
    assert "undelivered" in csv and "not delivered" not in csv
