"""Broadcast statistics on crafted data: every figure of SPEC 8, and the tick finishing sends."""

from __future__ import annotations

import sqlalchemy as sa

from app.broadcasts.services import finish_broadcasts
from app.broadcasts.stats import broadcast_stats, compute_broadcast_stats
from app.extensions import db
from app.models import BroadcastStatus, InboundMessage, OutboundMessage, Step, utcnow
from tests.factories import BroadcastFactory, ContactFactory


def message(broadcast, contact, status, *, step=Step.FIRST, sid=True, **fields):
    row = OutboundMessage(
        broadcast_id=broadcast.id,
        contact_id=contact.id,
        step=step,
        body="x",
        status=status,
        provider_sid=f"SM{contact.id:04d}{step.value}" if sid else None,
        sms_segments=fields.pop("segments", 1),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def test_every_figure_is_counted_from_the_rows(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    c = ContactFactory.create_batch(8)
    firsts = [
        message(broadcast, c[0], "delivered", segments=2),
        message(broadcast, c[1], "delivered"),
        message(broadcast, c[2], "sent"),
        message(broadcast, c[3], "undelivered", error_code="30003"),
        message(broadcast, c[4], "failed", error_code="30003"),  # failed after acceptance
        message(broadcast, c[5], "failed", sid=False, error_code="21610"),  # refused by the API
        message(broadcast, c[6], "queued", sid=False),
        message(broadcast, c[7], "skipped", sid=False),
    ]
    message(broadcast, c[0], "delivered", step=Step.SECOND)
    message(broadcast, c[1], "cancelled", step=Step.SECOND, sid=False, cancel_reason="replied")
    message(broadcast, c[2], "scheduled", step=Step.SECOND, sid=False)
    message(broadcast, c[3], "cancelled", step=Step.SECOND, sid=False, cancel_reason="unsubscribed")
    now = utcnow()
    db.session.add_all(
        [
            InboundMessage(
                provider_id="r1",
                provider="twilio",
                phone=c[1].phone,
                body="Thanks",
                contact_id=c[1].id,
                reply_to_id=firsts[1].id,
                received_at=now,
            ),
            InboundMessage(
                provider_id="r2",
                provider="twilio",
                phone=c[1].phone,
                body="Again",
                contact_id=c[1].id,
                reply_to_id=firsts[1].id,
                received_at=now,
            ),
            InboundMessage(
                provider_id="r3",
                provider="twilio",
                phone=c[3].phone,
                body="STOP",
                contact_id=c[3].id,
                reply_to_id=firsts[3].id,
                keyword="stop",
                received_at=now,
            ),
        ]
    )
    db.session.flush()
    stats = compute_broadcast_stats(broadcast.id)
    assert stats["recipients"] == 8
    assert stats["first_sent"] == 5  # delivered ×2, sent, undelivered, failed-after-acceptance
    assert stats["second_sent"] == 1
    assert stats["delivered"] == 3
    assert stats["failed"] == 3 + 0  # undelivered, failed ×2 (first step)
    assert dict((code, n) for code, n in stats["failed_by_code"]) == {"30003": 2, "21610": 1}
    assert stats["replies"] == 1  # distinct contacts, STOP excluded
    assert stats["unsubscribes"] == 2  # the STOP reply and the carrier's 21610
    assert stats["cancelled_by_reply"] == 1
    assert stats["segments_used"] == 2 + 1 + 1 + 1 + 1 + 1  # accepted messages only
    assert stats["delivery_rate"] == round(3 / 6, 4)
    assert stats["reply_rate"] == round(1 / 8, 4)
    assert stats["first_done"] == 7 and stats["pending"] == 2
    assert stats["by_status"]["first"]["delivered"] == 2


def test_a_sending_broadcast_is_finished_once_nothing_is_pending(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    contact = ContactFactory()
    row = message(broadcast, contact, "sent")
    follow_up = message(broadcast, contact, "scheduled", step=Step.SECOND, sid=False)
    db.session.commit()
    assert finish_broadcasts() == 0
    follow_up.status = "sent"
    db.session.commit()
    assert finish_broadcasts() == 1
    db.session.refresh(broadcast)
    assert broadcast.status == BroadcastStatus.SENT and broadcast.finished_at is not None
    assert broadcast.stats["first_sent"] == 1 and broadcast.stats["second_sent"] == 1
    assert row.id


def test_pages_get_stored_figures_and_a_sending_broadcast_is_recomputed_when_stale(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    contact = ContactFactory()
    message(broadcast, contact, "queued", sid=False)
    db.session.commit()
    first = broadcast_stats(broadcast)
    assert first["pending"] == 1
    db.session.execute(sa.update(OutboundMessage).values(status="sent", provider_sid="SMx"))
    broadcast.stats_updated_at = utcnow().replace(year=2020)
    db.session.commit()
    assert broadcast_stats(broadcast)["first_sent"] == 1
    upcoming = BroadcastFactory.build(status=BroadcastStatus.UPCOMING)
    assert broadcast_stats(upcoming) is None


def test_the_figures_stored_at_start_are_what_counting_would_give(app):
    from app.broadcasts.stats import initial_stats
    from app.sending.outbound import create_outbound

    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    contacts = ContactFactory.create_batch(3)
    create_outbound(broadcast, [c.id for c in contacts], "Hi")
    db.session.flush()
    assert initial_stats(3) == compute_broadcast_stats(broadcast.id)
    empty = BroadcastFactory(status=BroadcastStatus.SENT, started_at=utcnow())
    assert initial_stats(0) == compute_broadcast_stats(empty.id)
