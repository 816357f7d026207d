"""The overview page: audience, the upcoming broadcast, live progress and last results, health."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import BroadcastSegment, ContactSource, JobOutcome, JobRun
from tests.factories import (
    BroadcastFactory,
    ContactFactory,
    OutboundMessageFactory,
    SegmentFactory,
)
from tests.support import by_id


def test_overview_shows_audience_upcoming_broadcast_and_health(viewer_client):
    ContactFactory.create_batch(3)
    ContactFactory(unsubscribed=True)
    ContactFactory(source=ContactSource.UPLOAD)
    segment = SegmentFactory(name="Riverside")
    BroadcastFactory(
        first_message="Flood update <b>tonight</b>",
        segment_links=[BroadcastSegment(segment=segment, ratio=70, is_filler=True)],
    )
    db.session.add(JobRun(name="tick", outcome=JobOutcome.SUCCESS))
    db.session.commit()
    html = viewer_client.get("/").get_data(as_text=True)
    assert 'id="dashboard-upcoming"' in html
    assert "Flood update &lt;b&gt;tonight&lt;/b&gt;" in html  # escaped
    assert "Riverside 70% (filler)" in html
    # 3 subscribed conversation contacts can receive broadcasts; 5 contacts in all.
    assert (
        '<span class="stat__value">3</span><span class="stat__label">people can receive broadcasts'
        in html
    )
    assert '<span class="stat__value">5</span><span class="stat__label">contacts in all' in html
    assert "Last tick" in html


def test_overview_without_data_says_so(viewer_client):
    html = viewer_client.get("/").get_data(as_text=True)
    assert "No upcoming broadcast yet." in html
    assert "The scheduler has not ticked yet" in html


def test_overview_shows_the_next_run_and_the_live_progress_of_a_sending_broadcast(viewer_client):
    from datetime import timedelta

    from app.models import utcnow

    BroadcastFactory(run_at_override=utcnow() + timedelta(days=2))
    sending = BroadcastFactory(sending=True, recipient_count=1)
    OutboundMessageFactory(broadcast=sending)
    db.session.commit()
    html = viewer_client.get("/").get_data(as_text=True)
    assert "One-off time" in by_id(html, "broadcasts-next-run").text
    last = by_id(html, "dashboard-last")
    assert "Sending now" in last.text
    assert 'hx-trigger="every 2s"' in by_id(last, f"broadcasts-progress-{sending.id}")


def test_overview_shows_the_last_results_without_polling(viewer_client):
    from app.models import BroadcastStatus, utcnow
    from app.sends.stats import STATS_VERSION

    BroadcastFactory(
        status=BroadcastStatus.SENT,
        started_at=utcnow(),
        finished_at=utcnow(),
        stats={"recipients": 12, "first_sent": 12, "delivered": 11, "delivery_rate": 0.9167},
        stats_version=STATS_VERSION,
    )
    db.session.commit()
    html = viewer_client.get("/").get_data(as_text=True)
    assert "Last broadcast" in html and "91.7 %" in html
    assert 'hx-trigger="every 2s"' not in html
    # Its times say how long ago, and the compact line says what the time is.
    last = by_id(html, "dashboard-last").text
    assert "(just now) · 12 recipients" in last
    assert re.search(r"Broadcast \d+ finished \w{3} \d+, \d{4} .* \(just now\)", last)


def test_messages_in_24_hours_count_only_what_went_out(viewer_client):
    from datetime import timedelta

    from app.models import MessageStatus, utcnow
    from tests.factories import OutboundMessageFactory
    from tests.support import by_id

    OutboundMessageFactory(sent=True)
    OutboundMessageFactory(delivered=True)
    OutboundMessageFactory(undelivered=True)
    OutboundMessageFactory(sent=True, sent_at=utcnow() - timedelta(hours=25))  # too long ago
    OutboundMessageFactory()  # queued
    OutboundMessageFactory(status=MessageStatus.SCHEDULED)  # held by quiet hours
    OutboundMessageFactory(failed=True)  # refused by the provider
    OutboundMessageFactory(status=MessageStatus.CANCELLED)
    db.session.commit()
    html = viewer_client.get("/").get_data(as_text=True)
    assert (
        by_id(html, "dashboard-messages-24h")
        == '<span class="stat__value" id="dashboard-messages-24h">3</span>'
    )
