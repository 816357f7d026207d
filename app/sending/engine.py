"""The pipeline (SPEC 6.3): claim a batch, re-check it, send it paced and in parallel, record it."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.campaigns.targeting import exclude_clause
from app.extensions import db
from app.models import (
    IN_FLIGHT_STATUSES,
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    Contact,
    ExcludeReason,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.cancel import SEND_CANCELLED_REASON
from app.sending.contacts import exclude_contacts, unsubscribe_contacts
from app.sending.outbound import (
    after_first_accepted,
    replied_query,
    replied_since_first_message,
)
from app.sending.policy import (
    RETRY_LIMIT_REASON,
    ContactEffect,
    Outcome,
    SendResult,
    next_attempt_time,
)
from app.sending.quiet import QUIET_HOLD_NOTE, next_opening, quiet_window, recipient_zone
from app.sending.transports import OutboundItem, Transport, get_transport, sender_bucket
from app.validation import ValidationError

log = logging.getLogger(__name__)
T = OutboundMessage.__table__
EXCLUDE_RULE_REASON = "now matches the campaign's exclude rule"
# Results are written as they come, in small bulk statements, so a worker that dies mid-batch
# leaves as few messages as possible for recovery to look up.
FLUSH_EVERY = 50
FLUSH_SECONDS = 0.5


CLAIMED_COLUMNS = (
    T.c.id,
    T.c.contact_id,
    T.c.step,
    T.c.body,
    T.c.sms_segments,
    T.c.broadcast_id,
    T.c.campaign_id,
    T.c.segment_id,
    T.c.attempts,
    T.c.claimed_at,
)


def status_is(*statuses: MessageStatus) -> sa.ColumnElement[bool]:
    """`status = a OR status = b`: unlike IN, usable in an executemany statement."""
    return sa.or_(*(T.c.status == status for status in statuses))


def bulk_update(rows: list[dict[str, Any]], condition, **values: Any) -> int:
    """Every bulk UPDATE of the engine: one executemany by `_id` over `rows` (each a dict of
    `_`-prefixed bind values), changing a row only while `condition` still holds, so whoever
    moved it first (a callback, a person, another worker) is never overwritten. Returns the
    number of rows changed."""
    if not rows:
        return 0
    result = db.session.execute(
        sa.update(T).where(T.c.id == sa.bindparam("_id"), condition).values(**values), rows
    )
    return result.rowcount or 0


@dataclass
class Claimed:
    id: int
    contact_id: int
    step: str
    body: str
    sms_segments: int
    broadcast_id: int | None
    campaign_id: int | None
    segment_id: int | None
    attempts: int
    claimed_at: datetime
    phone: str = ""
    labels: tuple[str, ...] = ()  # Missive shared labels to apply (a campaign's label)


@dataclass
class BatchSummary:
    claimed: int = 0
    skipped: int = 0
    held: int = 0
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # What the provider accepted, for the job (the simulator's statuses are scheduled there).
    accepted_ids: list[int] = field(default_factory=list)
    # The sends the batch belonged to, as (broadcast_id, campaign_id): for the job's log line.
    sends: set[tuple[int | None, int | None]] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "skipped": self.skipped, "held": self.held, **self.counts}


def claim_size(app: Flask) -> int:
    """Messages one claim takes: about 30 seconds of the sender's pace, within SEND_CLAIM_MAX,
    so a claimed message waits far less than STALE_CLAIM_SECONDS for its turn."""
    return max(1, min(app.config["SEND_CLAIM_MAX"], int(app.config["SEND_RATE_MPS"] * 30)))


def claim_batch(limit: int, now: datetime | None = None) -> list[Claimed]:
    """`queued → sending` for up to `limit` messages, oldest first; commits.

    On PostgreSQL the candidate rows are locked with SKIP LOCKED, so concurrent workers each get
    different messages and none waits for another; the status check is repeated in the UPDATE, so
    only a successful claim ever leads to a provider call.
    """
    now = now or utcnow()
    candidates = (
        sa.select(T.c.id)
        .where(T.c.status == MessageStatus.QUEUED)
        .order_by(T.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("claim")
    )
    # A CTE, evaluated once: `id IN (subquery with LIMIT)` may be rescanned by the planner and
    # then claim more than `limit` rows.
    stmt = (
        sa.update(T)
        .where(T.c.id == candidates.c.id, T.c.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.SENDING, claimed_at=now, attempts=T.c.attempts + 1)
        .returning(*CLAIMED_COLUMNS)
    )
    rows = db.session.execute(stmt).all()
    db.session.commit()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def screen_claimed(app: Flask, claimed: list[Claimed], summary: BatchSummary) -> list[Claimed]:
    """Re-check eligibility and quiet hours of a fresh claim; returns what may be sent now.

    Unsubscribed or excluded contacts' messages become `skipped`; messages outside the
    recipient's allowed hours go back to `scheduled` until the window opens (the claim's
    attempt is given back). Commits.
    """
    if not claimed:
        return []
    contacts = {
        row.id: row
        for row in db.session.execute(
            sa.select(
                Contact.id,
                Contact.phone,
                Contact.unsubscribed,
                Contact.excluded,
                Contact.time_zone,
            ).where(Contact.id.in_({c.contact_id for c in claimed}))
        )
    }
    window = quiet_window(app)
    now = utcnow()
    replied = replied_since_first_message(c.id for c in claimed if c.step == Step.SECOND)
    sends = screen_sends(app, claimed, now)
    ready, skipped, held, cancelled = [], [], [], []
    for item in claimed:
        contact = contacts.get(item.contact_id)
        if contact is None or contact.unsubscribed or contact.excluded:
            reason = "unsubscribed" if contact is not None and contact.unsubscribed else "excluded"
            skipped.append({"_id": item.id, "_reason": f"no longer eligible ({reason})"})
            continue
        if item.id in replied:
            # A reply that arrived while this follow-up was already claimed or queued.
            cancelled.append({"_id": item.id, "_reason": "replied"})
            continue
        if (item.broadcast_id, item.campaign_id) in sends.cancelled:
            cancelled.append({"_id": item.id, "_reason": SEND_CANCELLED_REASON})
            continue
        if (item.campaign_id, item.contact_id) in sends.excluded:
            skipped.append({"_id": item.id, "_reason": EXCLUDE_RULE_REASON})
            continue
        item.labels = sends.labels.get(item.campaign_id, ())
        item.phone = contact.phone
        if window is not None:
            zone = recipient_zone(contact.time_zone, contact.phone, app.config["APP_TIMEZONE"])
            opening = next_opening(now, zone, window)
            if opening is not None:
                held.append({"_id": item.id, "_at": opening})
                continue
        ready.append(item)
    sending = T.c.status == MessageStatus.SENDING
    bulk_update(
        skipped, sending, status=MessageStatus.SKIPPED, cancel_reason=sa.bindparam("_reason")
    )
    bulk_update(
        cancelled, sending, status=MessageStatus.CANCELLED, cancel_reason=sa.bindparam("_reason")
    )
    bulk_update(
        held,
        sending,
        status=MessageStatus.SCHEDULED,
        scheduled_for=sa.bindparam("_at"),
        claimed_at=None,
        attempts=T.c.attempts - 1,
        error_message=QUIET_HOLD_NOTE,
    )
    if skipped or held or cancelled:
        db.session.commit()
    summary.skipped += len(skipped) + len(cancelled)
    summary.held += len(held)
    return ready


@dataclass
class SendScreen:
    """What the sends of a claimed batch say about it: sends cancelled meanwhile (keys
    `(broadcast_id, campaign_id)`), `(campaign_id, contact_id)` pairs that now match their
    campaign's exclude rule, and each campaign's Missive labels."""

    cancelled: set[tuple[int | None, int | None]] = field(default_factory=set)
    excluded: set[tuple[int, int]] = field(default_factory=set)
    labels: dict[int | None, tuple[str, ...]] = field(default_factory=dict)


def screen_sends(app: Flask, claimed: list[Claimed], now: datetime) -> SendScreen:
    """Per send, once per batch: was it cancelled, who now matches a campaign's exclude rule
    (SPEC 5: checked again just before each batch goes out), which labels to apply."""
    screen = SendScreen()
    broadcast_ids = {c.broadcast_id for c in claimed if c.broadcast_id}
    campaign_ids = {c.campaign_id for c in claimed if c.campaign_id}
    if broadcast_ids:
        for bid in db.session.scalars(
            sa.select(Broadcast.id).where(
                Broadcast.id.in_(broadcast_ids), Broadcast.status == BroadcastStatus.CANCELLED
            )
        ):
            screen.cancelled.add((bid, None))
    if not campaign_ids:
        return screen
    campaigns = db.session.execute(
        sa.select(
            Campaign.id,
            Campaign.status,
            Campaign.target_kind,
            Campaign.targeting,
            Campaign.missive_label_ids,
        ).where(Campaign.id.in_(campaign_ids))
    ).all()
    for campaign in campaigns:
        if campaign.status == CampaignStatus.CANCELLED:
            screen.cancelled.add((None, campaign.id))
            continue
        if campaign.missive_label_ids:
            screen.labels[campaign.id] = tuple(campaign.missive_label_ids)
        if campaign.target_kind != CampaignTarget.SEGMENTS or not (campaign.targeting or {}).get(
            "exclude"
        ):
            continue
        contact_ids = {c.contact_id for c in claimed if c.campaign_id == campaign.id}
        try:
            clause = exclude_clause(campaign.targeting, now=now, zone=app.config["APP_TIMEZONE"])
        except ValidationError as exc:
            # A segment of the exclude rule no longer works: sending to people it might have
            # excluded would be a guess, so they are skipped with the reason.
            log.warning("campaign %s exclude rule failed: %s", campaign.id, exc.message)
            screen.excluded.update((campaign.id, cid) for cid in contact_ids)
            continue
        if clause is None:
            continue
        for cid in db.session.scalars(
            sa.select(Contact.id).where(Contact.id.in_(contact_ids), clause)
        ):
            screen.excluded.add((campaign.id, cid))
    return screen


UNSENT = SendResult(Outcome.UNSENT, error_message="not sent: the worker was stopping")


REPLIED = SendResult(Outcome.REPLIED, error_message="replied")


def _replied(engine: sa.Engine | sa.Connection, item: Claimed) -> bool:
    """Has the contact replied since the first message? Asked again for a follow-up right before
    its call, after the wait for its pace slot (up to 30 s after the claim and its screen): a
    reply accepted meanwhile still cancels it. A reply committed after this read came in while
    the follow-up was already on its way.

    Each pool thread reads on a connection of its own from the engine. An app bound to one
    connection (the tests' rolled-back transaction) cannot lend it to threads: there the
    screen's check at claim time is the last one."""
    if item.step != Step.SECOND or not isinstance(engine, sa.Engine):
        return False
    with engine.connect() as connection:
        return connection.execute(replied_query([item.id])).first() is not None


def _send_one(
    transport: Transport,
    bucket,
    item: Claimed,
    stop: threading.Event | None,
    engine: sa.Engine | sa.Connection,
) -> SendResult:
    # Checked before and after waiting for the pace slot: once a shutdown is asked for, no new
    # call starts; a call already made is waited for (bounded by the read timeout) and recorded.
    if stop is not None and stop.is_set():
        return UNSENT
    bucket.acquire(item.sms_segments)
    if stop is not None and stop.is_set():
        return UNSENT
    if _replied(engine, item):
        return REPLIED
    return transport.send(
        OutboundItem(
            id=item.id,
            to=item.phone,
            body=item.body,
            sms_segments=item.sms_segments,
            labels=item.labels,
        )
    )


def send_claimed(
    app: Flask,
    transport: Transport,
    ready: list[Claimed],
    summary: BatchSummary,
    stop: threading.Event | None = None,
):
    """Send with at most `transport.concurrency` calls in flight; write results as they come.

    When `stop` is set (SIGTERM in the work horse), calls not yet started are not made: those
    messages go back to `queued` with their attempt given back; calls in flight finish and are
    recorded as usual.
    """
    if not ready:
        return
    bucket = sender_bucket(app, transport, sleep=stop.wait if stop is not None else time.sleep)
    engine = db.engine  # the pool's threads have no app context
    pending: list[tuple[Claimed, SendResult]] = []
    last_flush = time.monotonic()
    with ThreadPoolExecutor(max_workers=transport.concurrency) as pool:
        futures: dict[Future, Claimed] = {
            pool.submit(_send_one, transport, bucket, item, stop, engine): item for item in ready
        }
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                item = futures[future]
                error = future.exception()
                if error is not None:
                    # Not a provider answer (Redis gone while pacing, a bug): the call may or may
                    # not have happened, so recovery decides, never a blind resend.
                    log.exception("send of message %s raised", item.id, exc_info=error)
                    result = SendResult(Outcome.UNKNOWN, error_message=f"worker error: {error!r}")
                else:
                    result = future.result()
                pending.append((item, result))
            if len(pending) >= FLUSH_EVERY or (
                pending and time.monotonic() - last_flush >= FLUSH_SECONDS
            ):
                record_results(app, transport, pending, summary)
                pending = []
                last_flush = time.monotonic()
    if pending:
        record_results(app, transport, pending, summary)


def record_results(
    app: Flask,
    transport: Transport,
    results: Iterable[tuple[Claimed, SendResult]],
    summary: BatchSummary | None = None,
) -> list[int]:
    """Write a chunk of results in bulk, create follow-ups, apply contact effects; commits.
    Returns the ids of the messages the provider accepted.

    Every UPDATE requires the row to still be `sending` or `unknown` (ours): a status callback
    that got there first is never overwritten. Follow-ups are asked for every accepted first
    message, whoever recorded it: `after_first_accepted` creates each one once.
    """
    now = utcnow()
    backoff = app.config["RETRY_BACKOFF_SECONDS"]
    accepted, retrying, failed, unknown, unsent, replied = [], [], [], [], [], []
    unsubscribe, exclude = [], []
    for item, result in results:
        if summary is not None:
            summary.counts[result.outcome.value] += 1
        if result.outcome is Outcome.ACCEPTED:
            accepted.append(
                {
                    "_id": item.id,
                    "_sid": result.provider_sid,
                    "_pstatus": result.provider_status,
                    "_conv": result.conversation_id,
                    "_draft": result.provider_sid if transport.name == "missive" else None,
                }
            )
        elif result.outcome is Outcome.RETRY:
            at = next_attempt_time(item.attempts, now, backoff, result.retry_after)
            if at is None:
                failed.append(
                    _failure(item, result, f"{RETRY_LIMIT_REASON}: {result.error_message}")
                )
            else:
                retrying.append({**_failure(item, result, result.error_message), "_at": at})
        elif result.outcome is Outcome.UNKNOWN:
            unknown.append({"_id": item.id, "_msg": result.error_message})
        elif result.outcome is Outcome.UNSENT:
            unsent.append({"_id": item.id})
        elif result.outcome is Outcome.REPLIED:
            replied.append({"_id": item.id})
        else:
            failed.append(_failure(item, result, result.error_message))
            if result.contact_effect is ContactEffect.UNSUBSCRIBE:
                unsubscribe.append(item.contact_id)
            elif result.contact_effect is ContactEffect.EXCLUDE:
                exclude.append(item.contact_id)

    ours = status_is(*IN_FLIGHT_STATUSES)
    bulk_update(
        accepted,
        ours,
        status=MessageStatus.SENT,
        provider_sid=sa.bindparam("_sid"),
        provider_status=sa.bindparam("_pstatus"),
        missive_conversation_id=sa.bindparam("_conv"),
        missive_draft_id=sa.bindparam("_draft"),
        transport=transport.name,
        sent_at=now,
        error_code=None,
        error_message=None,
        next_attempt_at=None,
    )
    bulk_update(
        retrying,
        ours,
        status=MessageStatus.RETRYING,
        next_attempt_at=sa.bindparam("_at"),
        error_code=sa.bindparam("_code"),
        error_message=sa.bindparam("_msg"),
        claimed_at=None,
    )
    bulk_update(
        failed,
        ours,
        status=MessageStatus.FAILED,
        error_code=sa.bindparam("_code"),
        error_message=sa.bindparam("_msg"),
        failed_at=now,
        transport=transport.name,
    )
    # The claim time restarts here: recovery looks the message up once it is stale.
    bulk_update(
        unknown,
        T.c.status == MessageStatus.SENDING,
        status=MessageStatus.UNKNOWN,
        error_message=sa.bindparam("_msg"),
        claimed_at=now,
        transport=transport.name,
    )
    # Never handed to the provider: back in the queue as if never claimed.
    bulk_update(
        unsent,
        T.c.status == MessageStatus.SENDING,
        status=MessageStatus.QUEUED,
        claimed_at=None,
        attempts=T.c.attempts - 1,
    )
    # A follow-up whose contact replied while it waited for its slot: cancelled, as the screen
    # would have, never sent.
    bulk_update(
        replied,
        T.c.status == MessageStatus.SENDING,
        status=MessageStatus.CANCELLED,
        cancel_reason="replied",
    )
    accepted_ids = [row["_id"] for row in accepted]
    after_first_accepted(accepted_ids, now)
    if unsubscribe:
        unsubscribe_contacts(unsubscribe, "the carrier reports the recipient opted out (21610)")
    if exclude:
        exclude_contacts(exclude, ExcludeReason.INVALID_NUMBER, "the provider refused the number")
    db.session.commit()
    if summary is not None:
        summary.accepted_ids.extend(accepted_ids)
    return accepted_ids


def _failure(item: Claimed, result: SendResult, message: str | None) -> dict[str, Any]:
    return {"_id": item.id, "_code": result.error_code, "_msg": (message or "")[:2000]}


def send_batch(
    app: Flask, limit: int | None = None, stop: threading.Event | None = None
) -> BatchSummary:
    """Claim one batch and take it all the way to recorded results (nothing is claimed once
    `stop` is set; see send_claimed for a stop during the batch)."""
    summary = BatchSummary()
    if stop is not None and stop.is_set():
        return summary
    claimed = claim_batch(limit or claim_size(app))
    summary.claimed = len(claimed)
    for item in claimed:
        summary.sends.add((item.broadcast_id, item.campaign_id))
    ready = screen_claimed(app, claimed, summary)
    send_claimed(app, get_transport(app), ready, summary, stop)
    return summary
