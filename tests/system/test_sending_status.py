"""The System page's engine view: messages by status and the Needs attention list."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, MessageStatus, OutboundMessage, utcnow
from app.sending.recovery import NEEDS_ATTENTION_PREFIX
from tests.factories import BroadcastFactory, OutboundMessageFactory
from tests.support import HX, by_id


def stuck_messages(n: int = 2) -> list[OutboundMessage]:
    """Messages of one broadcast the recovery could not settle: `unknown`, needing a person."""
    rows = OutboundMessageFactory.create_batch(
        n,
        broadcast=BroadcastFactory(sending=True),
        body="Council <b>tonight</b>",
        status=MessageStatus.UNKNOWN,
        error_message=NEEDS_ATTENTION_PREFIX + "2 identical messages found at Twilio",
    )
    db.session.commit()
    return rows


def test_the_page_counts_messages_by_status_and_lists_what_needs_attention(viewer_client):
    rows = stuck_messages(2)
    page = viewer_client.get("/system/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="system-messages"' in html
    attention = by_id(html, "system-attention")
    assert "2 identical messages found at Twilio" in attention
    assert rows[0].contact.phone in attention
    assert "Council &lt;b&gt;tonight&lt;/b&gt;" in attention  # bodies are escaped
    assert "It was sent" not in html  # a viewer sees the list, not the buttons
    # Stacked at a narrow width, each value says what it is; the status reads in words.
    row = by_id(html, f"attention-{rows[0].id}")
    assert '<span class="badge badge--unknown">outcome unknown</span>' in row
    for label in ("To", "Since", "Why"):
        assert f'<span class="cell-label">{label}</span>' in row


def test_the_messages_of_the_last_7_days_read_in_words_in_their_statuses_colours(viewer_client):
    broadcast = BroadcastFactory(sending=True)
    for status in (MessageStatus.UNDELIVERED, MessageStatus.UNKNOWN, MessageStatus.DELIVERED):
        OutboundMessageFactory(broadcast=broadcast, status=status)
    db.session.commit()
    counts = by_id(viewer_client.get("/system/").get_data(as_text=True), "system-messages")
    assert '<span class="badge badge--undelivered">not delivered</span>' in counts
    assert '<span class="badge badge--unknown">outcome unknown</span>' in counts
    assert '<span class="badge badge--delivered">delivered</span>' in counts
    assert ">undelivered<" not in counts and ">unknown<" not in counts


def test_a_message_left_sending_reads_as_no_report_in_needs_attention(viewer_client):
    message = OutboundMessageFactory(
        broadcast=BroadcastFactory(sending=True),
        status=MessageStatus.SENDING,
        claimed_at=utcnow() - timedelta(hours=2),
    )
    db.session.commit()
    row = by_id(viewer_client.get("/system/").get_data(as_text=True), f"attention-{message.id}")
    assert '<span class="badge badge--sending">no report</span>' in row


def test_an_empty_list_says_everything_is_accounted_for(viewer_client):
    html = viewer_client.get("/system/").get_data(as_text=True)
    assert "Nothing needs attention" in by_id(html, "system-attention").text


def test_the_list_is_an_htmx_partial_and_a_plain_request_goes_to_the_page(viewer_client):
    stuck_messages(1)
    partial = viewer_client.get("/system/attention?page=1", headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]
    plain = viewer_client.get("/system/attention")
    assert plain.status_code == 302 and plain.headers["Location"].endswith("#system-attention")


def test_an_operator_marks_a_message_sent_and_it_is_audited(operator_client):
    rows = stuck_messages(2)
    response = operator_client.post(
        f"/system/attention/{rows[0].id}", data={"outcome": "sent"}, headers=HX
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(OutboundMessage, rows[0].id).status == MessageStatus.SENT
    assert f"attention-{rows[0].id}" not in response.get_data(as_text=True)
    assert f"attention-{rows[1].id}" in response.get_data(as_text=True)
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "message.resolved"))
    assert audit is not None and "as sent" in audit.summary


def test_send_again_queues_the_message(operator_client):
    rows = stuck_messages(1)
    response = operator_client.post(f"/system/attention/{rows[0].id}", data={"outcome": "resend"})
    assert response.status_code == 302
    db.session.expire_all()
    message = db.session.get(OutboundMessage, rows[0].id)
    assert message.status == MessageStatus.QUEUED and message.claimed_at is None


def test_resolving_twice_or_with_a_bad_choice_is_a_clear_422(operator_client):
    rows = stuck_messages(1)
    bad = operator_client.post(
        f"/system/attention/{rows[0].id}", data={"outcome": "maybe"}, headers=HX
    )
    assert bad.status_code == 422 and "sent or should be sent again" in bad.get_data(as_text=True)
    assert bad.headers["HX-Retarget"] == "#flash"
    assert operator_client.post(f"/system/attention/{rows[0].id}", data={"outcome": "sent"})
    again = operator_client.post(f"/system/attention/{rows[0].id}", data={"outcome": "resend"})
    assert again.status_code == 422 and "already resolved" in again.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(OutboundMessage, rows[0].id).status == MessageStatus.SENT
    missing = operator_client.post("/system/attention/999999", data={"outcome": "sent"})
    assert missing.status_code == 422


def test_a_viewer_cannot_resolve(viewer_client):
    rows = stuck_messages(1)
    response = viewer_client.post(f"/system/attention/{rows[0].id}", data={"outcome": "sent"})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(OutboundMessage, rows[0].id).status == MessageStatus.UNKNOWN
