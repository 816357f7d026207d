"""The figures of any send (SPEC 8), computed in a few grouped queries and kept on the send's row.

Every figure counts people or messages, never a mix, and its name says which:

- **people** (one first message each): `recipients` → `first_sent` (first message accepted by
  the provider) → `first_delivered` → `replies` (people who replied, STOP excluded);
  `unsubscribes` (people who opted out in answer to it, or whom the carrier reports opted out).
- **progress** of first messages: `first_done` of `recipients`, the rest `first_waiting`
  (queued, claimed, retrying) or `first_held` (held by quiet hours until `first_held_until`).
- **follow-ups** (at most one per person): `follow_ups_created`, `follow_ups_waiting` (for
  their time, or in flight; `follow_ups_held` of them held by quiet hours),
  `cancelled_by_reply`, `second_sent` (accepted), `follow_ups_delivered`.
- **messages** (first messages and follow-ups together): `messages_sent` (accepted),
  `delivered`, `failed` (failed + undelivered, with `failed_by_code`), `awaiting_receipt`
  (accepted, no final receipt yet), `needs_attention` (the provider may or may not have it),
  `segments_used` (SMS segments of accepted messages: the cost), `cancelled_by_send` (waiting
  when a person cancelled the whole send: reason "send cancelled").
- **rates**: `delivery_rate` = delivered ÷ (delivered + failed + undelivered), messages with a
  final status only, so a message still awaiting its receipt never lowers it; `reply_rate` =
  replies ÷ recipients (people). Neither can pass 100 %.

A GET never writes: pages call `display_stats`, which may compute fresh figures in memory; the
tick and the drain job store them (`refresh_stats`, `refresh_recent_stats`, `finish_sends`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    ACCEPTED_STATUSES,
    FAILED_STATUSES,
    UNFINISHED_STATUSES,
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    InboundMessage,
    Keyword,
    MessageStatus,
    Step,
    utcnow,
)
from app.sending.cancel import SEND_CANCELLED_REASON
from app.sending.quiet import QUIET_HOLD_NOTE
from app.sends import Send, T, is_sending, is_started, send_column

# Stored figures of an older shape are recomputed by the tick and never shown as they are.
STATS_VERSION = 3
# A page showing a sending send computes its figures afresh when they are older than this.
LIVE_MAX_AGE = timedelta(seconds=3)
# Delivery receipts keep arriving for a while after the last message went out.
REFRESH_FINISHED_FOR = timedelta(days=3)
# Sends whose stored figures are of an older shape, recomputed per tick.
OUTDATED_PER_TICK = 20
TOP_ERROR_CODES = 5

_ACCEPTED = tuple(s.value for s in ACCEPTED_STATUSES)
_FAILED = tuple(s.value for s in FAILED_STATUSES)
_WAITING = tuple(s.value for s in UNFINISHED_STATUSES if s != MessageStatus.SCHEDULED)


def rate(part: int, whole: int) -> float | None:
    """part ÷ whole, rounded; None without a whole. Parts are subsets, so never above 1."""
    return round(min(part, whole) / whole, 4) if whole else None


def compute_stats(send: Send) -> dict[str, Any]:
    """Every figure of SPEC 8 for one send, from its outbound rows and the replies to them."""
    column = send_column(send)
    counts: dict[str, dict[str, int]] = {Step.FIRST.value: {}, Step.SECOND.value: {}}
    accepted_failed = {Step.FIRST.value: 0, Step.SECOND.value: 0}
    cancelled_by_reply = 0
    cancelled_by_send = 0
    segments_used = 0
    held_until: datetime | None = None
    rows = db.session.execute(
        sa.select(
            T.c.step,
            T.c.status,
            (T.c.provider_sid.is_not(None)).label("has_sid"),
            (T.c.cancel_reason == "replied").label("by_reply"),
            (T.c.cancel_reason == SEND_CANCELLED_REASON).label("by_send"),
            (T.c.error_message == QUIET_HOLD_NOTE).label("quiet"),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(T.c.sms_segments), 0),
            sa.func.min(T.c.scheduled_for),
        )
        .where(column == send.id)
        .group_by(T.c.step, T.c.status, "has_sid", "by_reply", "by_send", "quiet")
    ).all()
    follow_ups_held = 0
    for step, status, has_sid, by_reply, by_send, quiet, n, segments, earliest in rows:
        step, status = str(step), str(status)
        counts[step][status] = counts[step].get(status, 0) + n
        failed_after_acceptance = status == MessageStatus.FAILED.value and bool(has_sid)
        if status in _ACCEPTED or failed_after_acceptance:
            segments_used += int(segments)
        if failed_after_acceptance:
            accepted_failed[step] += n
        if status == MessageStatus.CANCELLED.value and by_reply and step == Step.SECOND.value:
            cancelled_by_reply += n
        if status == MessageStatus.CANCELLED.value and by_send:
            cancelled_by_send += n
        if status != MessageStatus.SCHEDULED.value:
            continue
        if step == Step.FIRST.value and earliest:  # a first message waits only for quiet hours
            held_until = earliest if held_until is None else min(held_until, earliest)
        elif step == Step.SECOND.value and quiet:
            follow_ups_held += n

    first, second = counts[Step.FIRST.value], counts[Step.SECOND.value]

    def total(of: dict[str, int], statuses) -> int:
        return sum(of.get(s, 0) for s in statuses)

    recipients = sum(first.values())
    first_sent = total(first, _ACCEPTED) + accepted_failed[Step.FIRST.value]
    second_sent = total(second, _ACCEPTED) + accepted_failed[Step.SECOND.value]
    first_waiting = total(first, _WAITING)
    first_held = first.get(MessageStatus.SCHEDULED.value, 0)
    delivered = total(first, ("delivered",)) + total(second, ("delivered",))
    failed = total(first, _FAILED) + total(second, _FAILED)
    awaiting = total(first, ("sent",)) + total(second, ("sent",))

    errors = db.session.execute(
        sa.select(T.c.error_code, sa.func.count())
        .where(column == send.id, T.c.status.in_(FAILED_STATUSES))
        .group_by(T.c.error_code)
        .order_by(sa.func.count().desc(), T.c.error_code)
        .limit(TOP_ERROR_CODES)
    ).all()
    replies = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(InboundMessage.contact_id)))
        .select_from(InboundMessage)
        .join(T, T.c.id == InboundMessage.reply_to_id)
        .where(column == send.id, InboundMessage.keyword.is_(None))
    )
    # People, each once: a STOP in answer to it, or the carrier saying they had opted out.
    opted_out = sa.union(
        sa.select(InboundMessage.contact_id)
        .join(T, T.c.id == InboundMessage.reply_to_id)
        .where(column == send.id, InboundMessage.keyword == Keyword.STOP),
        sa.select(T.c.contact_id).where(column == send.id, T.c.error_code == "21610"),
    ).subquery()
    unsubscribes = db.session.scalar(
        sa.select(sa.func.count()).select_from(opted_out).where(opted_out.c.contact_id.is_not(None))
    )
    replies, unsubscribes = replies or 0, unsubscribes or 0
    return {
        "version": STATS_VERSION,
        # people
        "recipients": recipients,
        "first_sent": first_sent,
        "first_delivered": first.get("delivered", 0),
        "replies": replies,
        "unsubscribes": unsubscribes,
        # progress of first messages (people)
        "first_done": recipients - first_waiting - first_held,
        "first_waiting": first_waiting,
        "first_held": first_held,
        "first_held_until": held_until.isoformat() if held_until else None,
        # follow-ups (people: one each at most)
        "follow_ups_created": sum(second.values()),
        "follow_ups_waiting": total(second, tuple(s.value for s in UNFINISHED_STATUSES)),
        "follow_ups_held": follow_ups_held,
        "cancelled_by_reply": cancelled_by_reply,
        "second_sent": second_sent,
        "follow_ups_delivered": second.get("delivered", 0),
        # messages
        "messages_sent": first_sent + second_sent,
        "delivered": delivered,
        "failed": failed,
        "failed_by_code": [[code or "none", n] for code, n in errors],
        "awaiting_receipt": awaiting,
        "needs_attention": first.get("unknown", 0) + second.get("unknown", 0),
        "segments_used": segments_used,
        "cancelled_by_send": cancelled_by_send,
        # rates
        "delivery_rate": rate(delivered, delivered + failed),
        "reply_rate": rate(replies, recipients),
        # still to do, in messages: what keeps the send open
        "pending": total(first, tuple(s.value for s in UNFINISHED_STATUSES))
        + total(second, tuple(s.value for s in UNFINISHED_STATUSES)),
        "by_status": {step: dict(of) for step, of in counts.items()},
    }


def initial_stats(recipients: int) -> dict[str, Any]:
    """The figures of a send that has just started: every first message queued. Exactly what
    `compute_stats` returns for it, without counting the rows it has just written."""
    return {
        "version": STATS_VERSION,
        "recipients": recipients,
        "first_sent": 0,
        "first_delivered": 0,
        "replies": 0,
        "unsubscribes": 0,
        "first_done": 0,
        "first_waiting": recipients,
        "first_held": 0,
        "first_held_until": None,
        "follow_ups_created": 0,
        "follow_ups_waiting": 0,
        "follow_ups_held": 0,
        "cancelled_by_reply": 0,
        "second_sent": 0,
        "follow_ups_delivered": 0,
        "messages_sent": 0,
        "delivered": 0,
        "failed": 0,
        "failed_by_code": [],
        "awaiting_receipt": 0,
        "needs_attention": 0,
        "segments_used": 0,
        "cancelled_by_send": 0,
        "delivery_rate": None,
        "reply_rate": 0.0 if recipients else None,
        "pending": recipients,
        "by_status": {"first": {"queued": recipients} if recipients else {}, "second": {}},
    }


def store_stats(send: Send, stats: dict[str, Any], now: datetime | None = None) -> None:
    send.stats = stats
    send.stats_version = STATS_VERSION
    send.stats_updated_at = now or utcnow()


def refresh_stats(send: Send, now: datetime | None = None) -> dict[str, Any]:
    """Recompute and store; the caller commits."""
    stats = compute_stats(send)
    store_stats(send, stats, now)
    return stats


def display_stats(send: Send, now: datetime | None = None) -> dict[str, Any] | None:
    """The figures a page shows; never writes. The stored ones, or fresh ones computed in memory
    when a sending send's are more than a few seconds old or of an older shape, with `as_of`
    (when they were counted, ISO 8601). None before the send starts."""
    if not is_started(send):
        return None
    now = now or utcnow()
    stored = send.stats if send.stats_version == STATS_VERSION else None
    if stored is not None and is_sending(send):
        updated = send.stats_updated_at or send.started_at
        if updated is None or updated < now - LIVE_MAX_AGE:
            stored = None
    if stored is not None:
        as_of = send.stats_updated_at or now
        return {**stored, "as_of": as_of.isoformat()}
    return {**compute_stats(send), "as_of": now.isoformat()}


# -- what the tick and the drain job store -----------------------------------------------------
_MODELS = (
    (Broadcast, BroadcastStatus.SENDING, BroadcastStatus.SENT),
    (Campaign, CampaignStatus.SENDING, CampaignStatus.SENT),
)
_CANCELLED = {Broadcast: BroadcastStatus.CANCELLED, Campaign: CampaignStatus.CANCELLED}


def refresh_recent_stats(now: datetime | None = None) -> int:
    """The tick's pass: sending sends, those finished in the last few days (late receipts), and a
    few whose stored figures are of an older shape. Commits; returns how many were refreshed."""
    now = now or utcnow()
    cutoff = now - REFRESH_FINISHED_FOR
    refreshed = 0
    for model, sending, sent in _MODELS:
        cancelled = _CANCELLED[model]
        recent = db.session.scalars(
            sa.select(model).where(
                sa.or_(
                    model.status == sending,
                    # Cancelled ones too: what was with the provider still gets its receipts.
                    sa.and_(
                        model.status.in_((sent, cancelled)),
                        model.finished_at >= cutoff,
                        model.started_at.is_not(None),
                    ),
                )
            )
        ).all()
        outdated = db.session.scalars(
            sa.select(model)
            .where(
                model.started_at.is_not(None),
                sa.or_(model.stats_version.is_(None), model.stats_version < STATS_VERSION),
                model.id.not_in([send.id for send in recent] or [0]),
            )
            .order_by(model.id.desc())
            .limit(OUTDATED_PER_TICK)
        ).all()
        for send in (*recent, *outdated):
            refresh_stats(send, now)
            refreshed += 1
    db.session.commit()
    return refreshed


def refresh_finished_stats(
    *, broadcast_ids: set[int], campaign_ids: set[int], now: datetime | None = None
) -> int:
    """Store fresh figures for these sends when they have finished (a sending send's page counts
    for itself). For a job that has just changed their messages. Commits."""
    refreshed = 0
    for (model, _, sent), ids in zip(_MODELS, (broadcast_ids, campaign_ids), strict=True):
        if not ids:
            continue
        for send in db.session.scalars(
            sa.select(model).where(model.id.in_(sorted(ids)), model.status == sent)
        ):
            refresh_stats(send, now)
            refreshed += 1
    db.session.commit()
    return refreshed


def finish_sends(now: datetime | None = None) -> int:
    """Sending broadcasts and campaigns with nothing left to send become `sent`, with their
    figures stored. Commits; returns how many finished. Safe to run anywhere, any number of
    times: the tick and the drain job (when it runs out of work) both call it."""
    now = now or utcnow()
    finished = 0
    for model, sending, sent in _MODELS:
        column = T.c.broadcast_id if model is Broadcast else T.c.campaign_id
        unfinished = (
            sa.select(T.c.id)
            .where(column == model.id, T.c.status.in_(UNFINISHED_STATUSES))
            .exists()
        )
        done = db.session.scalars(
            sa.select(model).where(model.status == sending, ~unfinished)
        ).all()
        for send in done:
            send.status = sent
            send.finished_at = now
            refresh_stats(send, now)
        finished += len(done)
    db.session.commit()
    return finished
