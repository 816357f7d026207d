"""The status-callback inbox: a callback is accepted with one insert and applied in bulk later.

SMS gateways write statuses this way: the webhook only validates and stores (one INSERT, then
204), and a worker applies what is pending every moment in one bulk pass through
`apply_status_updates`. PostgreSQL holds what was accepted, so a worker or Redis outage only
delays statuses: the every-minute tick sweeps whatever is still pending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import StatusCallback, WebhookEvent, utcnow
from app.sending.status import Applied, StatusUpdate, apply_status_updates

C = StatusCallback.__table__
BATCH = 1000
# One bulk applier at a time (pg_advisory_xact_lock): the passes apply callbacks in the order
# they were accepted, and a second applier waits for the first instead of racing it.
APPLIER_LOCK = 0x5354_4154  # "STAT"
# A callback naming a message only by SID, when no message has that SID yet (its worker has
# not recorded the provider's answer), is tried again this often, for this long: recovery
# gives a stale claim its SID within STALE_CLAIM_SECONDS (5 minutes by default).
SID_RETRY = timedelta(seconds=5)
SID_WAIT = timedelta(hours=1)


def accept_status_callback(update: StatusUpdate, payload: str) -> None:
    """Store one callback in the inbox: the webhook's only statement. The caller commits."""
    db.session.execute(
        sa.insert(C).values(
            received_at=utcnow(),
            message_id=update.message_id,
            provider_sid=update.provider_sid,
            provider_status=(update.provider_status or "")[:40],
            error_code=update.error_code,
            error_message=update.error_message,
            payload=payload,
        )
    )


def pending_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(C)) or 0


def _outcome(row: Any, applied: Applied) -> str:
    target = (
        f"message {row.message_id}" if row.message_id is not None else f"sid {row.provider_sid}"
    )
    if applied is Applied.APPLIED:
        said = "applied"
    elif applied is Applied.NO_MESSAGE and row.message_id is None:
        said = "no change (no message has this SID)"
    else:
        said = "no change"
    return f"{row.provider_status} for {target}: {said}"[:200]


def apply_pending_batch(*, after_id: int = 0, limit: int = BATCH, now: datetime | None = None):
    """One bulk pass over up to `limit` pending callbacks with ids above `after_id`, in id
    order; commits. Returns (counts, last id seen, whether the batch was full).

    Each callback applied (or found to change nothing) is written to the webhook log with its
    outcome and deleted from the inbox in the same transaction as its status, so a crash
    anywhere leaves it pending, never half-applied. Callbacks whose message row another
    transaction holds (a worker recording results) stay for the next pass; one by SID only whose
    message has no SID yet waits SID_RETRY, up to SID_WAIT.
    """
    now = now or utcnow()
    counts = {"applied": 0, "unchanged": 0, "busy": 0, "waiting": 0}
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(APPLIER_LOCK)))
    rows = db.session.execute(
        sa.select(C)
        .where(C.c.id > after_id, sa.or_(C.c.retry_at.is_(None), C.c.retry_at <= now))
        .order_by(C.c.id)
        .limit(limit)
    ).all()
    if not rows:
        db.session.commit()
        return counts, after_id, False
    outcomes = apply_status_updates(
        [
            StatusUpdate(
                provider_status=row.provider_status,
                message_id=row.message_id,
                provider_sid=row.provider_sid,
                error_code=row.error_code,
                error_message=row.error_message,
            )
            for row in rows
        ],
        skip_locked=True,
        now=now,
    )
    done, busy, later = [], [], []
    for row, applied in zip(rows, outcomes, strict=True):
        if applied is Applied.BUSY:
            busy.append(row.id)
        elif (
            applied is Applied.NO_MESSAGE
            and row.message_id is None
            and now - row.received_at < SID_WAIT
        ):
            later.append(row.id)
        else:
            done.append((row, applied))
    if done:
        db.session.execute(
            sa.insert(WebhookEvent.__table__),
            [
                {
                    "source": "twilio_status",
                    "received_at": row.received_at,
                    "signature_ok": True,
                    "payload": row.payload,
                    "outcome": _outcome(row, applied),
                }
                for row, applied in done
            ],
        )
        db.session.execute(sa.delete(C).where(C.c.id.in_([row.id for row, _ in done])))
    if later:
        db.session.execute(sa.update(C).where(C.c.id.in_(later)).values(retry_at=now + SID_RETRY))
    db.session.commit()
    counts["applied"] = sum(applied is Applied.APPLIED for _, applied in done)
    counts["unchanged"] = len(done) - counts["applied"]
    counts["busy"] = len(busy)
    counts["waiting"] = len(later)
    return counts, rows[-1].id, len(rows) == limit


def apply_pending_callbacks(*, limit: int = BATCH, now: datetime | None = None) -> dict[str, int]:
    """Apply every callback pending now, batch after batch; commits each. Returns the counts
    (`applied`, `unchanged`; left for a later pass: `busy`, their message row was held by
    another transaction, and `waiting`, by SID only for a message without that SID yet)."""
    totals = {"applied": 0, "unchanged": 0, "busy": 0, "waiting": 0}
    after_id, full = 0, True
    while full:
        counts, after_id, full = apply_pending_batch(after_id=after_id, limit=limit, now=now)
        for key, value in counts.items():
            totals[key] += value
        if counts["busy"]:
            # A later callback of a busy message must not overtake it: the next pass starts
            # again from the oldest pending one.
            break
    return totals
