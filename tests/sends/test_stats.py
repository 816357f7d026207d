"""Statistics of any send on crafted data: every figure of SPEC 8 in its unit (people or
messages), pages that never write, and finishing sends."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.outbound import create_outbound
from app.sends.stats import (
    STATS_VERSION,
    compute_stats,
    display_stats,
    finish_sends,
    initial_stats,
    refresh_recent_stats,
)
from tests.factories import (
    BroadcastFactory,
    ContactFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
)


def message(send, contact, status, *, step=Step.FIRST, sid=True, **fields):
    """One outbound row of `send` in exactly this status, with a provider id or without."""
    which = {"broadcast": send} if isinstance(send, Broadcast) else {"campaign": send}
    return OutboundMessageFactory(
        **which,
        contact=contact,
        step=step,
        status=status,
        provider_sid=f"SM{send.id}-{contact.id:04d}{step.value}" if sid else None,
        sms_segments=fields.pop("segments", 1),
        **fields,
    )


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
    InboundMessageFactory(reply_to=firsts[1], body="Thanks")
    InboundMessageFactory(reply_to=firsts[1], body="Again")
    InboundMessageFactory(reply_to=firsts[3], stop=True)
    db.session.flush()
    stats = compute_stats(broadcast)
    # People: recipients → first message accepted → first delivered → replied.
    assert stats["recipients"] == 8
    assert stats["first_sent"] == 5  # delivered ×2, sent, undelivered, failed-after-acceptance
    assert stats["first_delivered"] == 2
    assert stats["replies"] == 1  # distinct contacts, STOP excluded
    assert stats["unsubscribes"] == 2  # the STOP reply and the carrier's 21610
    # Progress of first messages: 7 done, 1 still queued, nothing held.
    assert (stats["first_done"], stats["first_waiting"], stats["first_held"]) == (7, 1, 0)
    # Follow-ups: 4 created, 1 cancelled by the reply, 1 waiting, 1 accepted and delivered.
    assert stats["follow_ups_created"] == 4
    assert stats["cancelled_by_reply"] == 1
    assert stats["follow_ups_waiting"] == 1
    assert stats["second_sent"] == 1 and stats["follow_ups_delivered"] == 1
    # Messages: first and follow-up together.
    assert stats["messages_sent"] == 6
    assert stats["delivered"] == 3
    assert stats["failed"] == 3  # undelivered, failed ×2 (first step)
    assert stats["awaiting_receipt"] == 1  # the `sent` first message
    assert dict((code, n) for code, n in stats["failed_by_code"]) == {"30003": 2, "21610": 1}
    assert stats["segments_used"] == 2 + 1 + 1 + 1 + 1 + 1  # accepted messages only
    # delivered ÷ messages with a final status; the one awaiting its receipt is not counted.
    assert stats["delivery_rate"] == round(3 / 6, 4)
    assert stats["reply_rate"] == round(1 / 8, 4)
    assert stats["pending"] == 2
    assert stats["by_status"]["first"]["delivered"] == 2


def test_a_receipt_still_to_come_never_lowers_the_delivery_rate(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    people = ContactFactory.create_batch(4)
    message(broadcast, people[0], "delivered")
    for person in people[1:]:
        message(broadcast, person, "sent")
    stats = compute_stats(broadcast)
    assert stats["delivery_rate"] == 1.0 and stats["awaiting_receipt"] == 3
    assert stats["first_done"] == 4 and stats["first_waiting"] == 0


def test_held_first_messages_are_a_figure_of_their_own_with_their_time(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    people = ContactFactory.create_batch(3)
    opening = utcnow().replace(microsecond=0) + timedelta(hours=5)
    message(broadcast, people[0], "scheduled", sid=False, scheduled_for=opening)
    message(
        broadcast, people[1], "scheduled", sid=False, scheduled_for=opening + timedelta(hours=1)
    )
    message(broadcast, people[2], "delivered")
    stats = compute_stats(broadcast)
    assert (stats["first_done"], stats["first_waiting"], stats["first_held"]) == (1, 0, 2)
    assert stats["first_held_until"] == opening.isoformat()


def test_a_campaign_is_counted_like_a_broadcast(app):
    campaign = Campaign(first_message="Vote", status=CampaignStatus.SENDING, started_at=utcnow())
    db.session.add(campaign)
    db.session.flush()
    people = ContactFactory.create_batch(2)
    message(campaign, people[0], "delivered")
    message(campaign, people[1], "undelivered", error_code="30006")
    other = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    message(other, people[0], "delivered")
    stats = compute_stats(campaign)
    assert stats["recipients"] == 2 and stats["delivered"] == 1 and stats["failed"] == 1
    assert stats["failed_by_code"] == [["30006", 1]]


def test_a_sending_broadcast_is_finished_once_nothing_is_pending(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    contact = ContactFactory()
    row = message(broadcast, contact, "sent")
    follow_up = message(broadcast, contact, "scheduled", step=Step.SECOND, sid=False)
    db.session.commit()
    assert finish_sends() == 0
    follow_up.status = "sent"
    db.session.commit()
    assert finish_sends() == 1
    db.session.refresh(broadcast)
    assert broadcast.status == BroadcastStatus.SENT and broadcast.finished_at is not None
    assert broadcast.stats["first_sent"] == 1 and broadcast.stats["second_sent"] == 1
    assert row.id


def test_pages_get_stored_figures_and_fresh_ones_in_memory_without_writing(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    contact = ContactFactory()
    message(broadcast, contact, "queued", sid=False)
    db.session.commit()
    # Never counted yet: computed for the page, nothing stored.
    assert display_stats(broadcast)["pending"] == 1
    assert broadcast.stats is None and not db.session.dirty
    refresh_recent_stats()
    db.session.refresh(broadcast)
    assert broadcast.stats_version == STATS_VERSION and broadcast.stats["pending"] == 1
    db.session.execute(sa.update(OutboundMessage).values(status="sent", provider_sid="SMx"))
    stored_at = utcnow().replace(year=2020)
    broadcast.stats_updated_at = stored_at
    db.session.commit()
    # Stale while sending: fresh figures on the page, the stored ones left to the tick.
    assert display_stats(broadcast)["first_sent"] == 1
    db.session.expire_all()
    assert broadcast.stats["first_sent"] == 0 and broadcast.stats_updated_at == stored_at
    upcoming = BroadcastFactory.build(status=BroadcastStatus.UPCOMING)
    assert display_stats(upcoming) is None


def test_figures_of_an_older_shape_are_never_shown_and_the_tick_recomputes_them(app):
    contact = ContactFactory()
    old = BroadcastFactory(
        status=BroadcastStatus.SENT,
        started_at=utcnow() - timedelta(days=30),
        finished_at=utcnow() - timedelta(days=30),
        stats={"recipients": 1, "delivered": 2, "delivery_rate": 2.0},
    )
    message(old, contact, "delivered")
    db.session.commit()
    assert display_stats(old)["delivery_rate"] == 1.0
    assert refresh_recent_stats() == 1
    db.session.refresh(old)
    assert old.stats_version == STATS_VERSION and old.stats["delivered"] == 1
    assert refresh_recent_stats() == 0  # finished long ago and current: left alone


def test_the_figures_stored_at_start_are_what_counting_would_give(app):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    contacts = ContactFactory.create_batch(3)
    create_outbound(broadcast, [c.id for c in contacts], "Hi")
    db.session.flush()
    assert initial_stats(3) == compute_stats(broadcast)
    empty = BroadcastFactory(status=BroadcastStatus.SENT, started_at=utcnow())
    assert initial_stats(0) == compute_stats(empty)
