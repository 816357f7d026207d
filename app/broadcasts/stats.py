"""Broadcast statistics (SPEC 8), computed in a few grouped queries and kept on the row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastStatus,
    InboundMessage,
    Keyword,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)

T = OutboundMessage.__table__
PENDING = ("scheduled", "queued", "sending", "retrying")
ACCEPTED = ("sent", "delivered", "undelivered")
# A page showing a sending broadcast recomputes its figures when they are older than this.
LIVE_MAX_AGE = timedelta(seconds=3)
# Delivery receipts keep arriving for a while after the last message went out.
REFRESH_FINISHED_FOR = timedelta(days=3)


def compute_broadcast_stats(broadcast_id: int) -> dict[str, Any]:
    """Every figure of SPEC 8 for one broadcast (four indexed queries)."""
    by_step: dict[str, dict[str, int]] = {Step.FIRST.value: {}, Step.SECOND.value: {}}
    accepted_failed = {Step.FIRST.value: 0, Step.SECOND.value: 0}
    cancelled_by_reply = 0
    segments_used = 0
    rows = db.session.execute(
        sa.select(
            T.c.step,
            T.c.status,
            (T.c.provider_sid.is_not(None)).label("has_sid"),
            (T.c.cancel_reason == "replied").label("by_reply"),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(T.c.sms_segments), 0),
        )
        .where(T.c.broadcast_id == broadcast_id)
        .group_by(T.c.step, T.c.status, "has_sid", "by_reply")
    ).all()
    for step, status, has_sid, by_reply, n, segments in rows:
        step, status = str(step), str(status)
        by_step[step][status] = by_step[step].get(status, 0) + n
        accepted = status in ACCEPTED or (status == "failed" and has_sid)
        if accepted:
            segments_used += int(segments)
        if status == "failed" and has_sid:
            accepted_failed[step] += n
        if status == "cancelled" and by_reply and step == Step.SECOND.value:
            cancelled_by_reply += n

    def total(step: str, statuses) -> int:
        return sum(by_step[step].get(s, 0) for s in statuses)

    first, second = Step.FIRST.value, Step.SECOND.value
    recipients = sum(by_step[first].values())
    first_sent = total(first, ACCEPTED) + accepted_failed[first]
    second_sent = total(second, ACCEPTED) + accepted_failed[second]
    delivered = total(first, ("delivered",)) + total(second, ("delivered",))
    failed = total(first, ("failed", "undelivered")) + total(second, ("failed", "undelivered"))
    first_done = recipients - total(first, PENDING)

    errors = db.session.execute(
        sa.select(T.c.error_code, sa.func.count())
        .where(
            T.c.broadcast_id == broadcast_id,
            T.c.status.in_((MessageStatus.FAILED, MessageStatus.UNDELIVERED)),
        )
        .group_by(T.c.error_code)
        .order_by(sa.func.count().desc())
        .limit(5)
    ).all()
    inbound = db.session.execute(
        sa.select(
            sa.func.count(sa.distinct(InboundMessage.contact_id)).filter(
                InboundMessage.keyword.is_(None)
            ),
            sa.func.count(sa.distinct(InboundMessage.contact_id)).filter(
                InboundMessage.keyword == Keyword.STOP
            ),
        )
        .select_from(InboundMessage)
        .join(T, T.c.id == InboundMessage.reply_to_id)
        .where(T.c.broadcast_id == broadcast_id)
    ).one()
    carrier_opt_outs = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(T.c.contact_id))).where(
            T.c.broadcast_id == broadcast_id, T.c.error_code == "21610"
        )
    )
    sent_messages = first_sent + second_sent
    return {
        "recipients": recipients,
        "first_sent": first_sent,
        "second_sent": second_sent,
        "delivered": delivered,
        "failed": failed,
        "failed_by_code": [[code or "none", n] for code, n in errors],
        "replies": inbound[0] or 0,
        "unsubscribes": (inbound[1] or 0) + (carrier_opt_outs or 0),
        "cancelled_by_reply": cancelled_by_reply,
        "segments_used": segments_used,
        "delivery_rate": round(delivered / sent_messages, 4) if sent_messages else None,
        "reply_rate": round((inbound[0] or 0) / recipients, 4) if recipients else None,
        "first_done": first_done,
        "pending": total(first, PENDING) + total(second, PENDING),
        "by_status": {step: dict(counts) for step, counts in by_step.items()},
    }


def initial_stats(recipients: int) -> dict[str, Any]:
    """The figures of a broadcast that has just been created: every first message queued.

    Exactly what `compute_broadcast_stats` returns for it, without counting the rows.
    """
    return {
        "recipients": recipients,
        "first_sent": 0,
        "second_sent": 0,
        "delivered": 0,
        "failed": 0,
        "failed_by_code": [],
        "replies": 0,
        "unsubscribes": 0,
        "cancelled_by_reply": 0,
        "segments_used": 0,
        "delivery_rate": None,
        "reply_rate": 0.0 if recipients else None,
        "first_done": 0,
        "pending": recipients,
        "by_status": {"first": {"queued": recipients} if recipients else {}, "second": {}},
    }


def refresh_broadcast_stats(broadcast: Broadcast) -> dict[str, Any]:
    """Recompute and store; the caller commits."""
    broadcast.stats = compute_broadcast_stats(broadcast.id)
    broadcast.stats_updated_at = utcnow()
    return broadcast.stats


def broadcast_stats(broadcast: Broadcast) -> dict[str, Any] | None:
    """The figures a page shows: stored ones, recomputed (and stored) when a sending broadcast's
    are older than a few seconds. Commits when it recomputes. None before it starts."""
    if broadcast.status == BroadcastStatus.UPCOMING:
        return None
    stale = broadcast.stats is None or (
        broadcast.status == BroadcastStatus.SENDING
        and (broadcast.stats_updated_at or broadcast.started_at) < utcnow() - LIVE_MAX_AGE
    )
    if stale:
        refresh_broadcast_stats(broadcast)
        db.session.commit()
    return broadcast.stats


def refresh_recent_stats() -> int:
    """The tick's pass: sending broadcasts, and those finished in the last few days."""
    cutoff = utcnow() - REFRESH_FINISHED_FOR
    broadcasts = db.session.scalars(
        sa.select(Broadcast).where(
            sa.or_(
                Broadcast.status == BroadcastStatus.SENDING,
                sa.and_(Broadcast.status == BroadcastStatus.SENT, Broadcast.finished_at >= cutoff),
            )
        )
    ).all()
    for broadcast in broadcasts:
        refresh_broadcast_stats(broadcast)
    db.session.commit()
    return len(broadcasts)
