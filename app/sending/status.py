"""Provider status updates (callbacks, the simulator, reconciliation), applied monotonically."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    FAILED_STATUSES,
    IN_FLIGHT_STATUSES,
    ExcludeReason,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.contacts import EXCLUDE_AT_ONCE_CODES, exclude_contacts
from app.sending.outbound import after_first_accepted

T = OutboundMessage.__table__

# How far along each provider status is. A status only ever replaces one of lower rank, so a late
# `sent` never overwrites `delivered`, and a duplicate changes nothing.
PROVIDER_RANK: dict[str, int] = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "partially_delivered": 5,
    "read": 6,
}
PROVIDER_TO_STATUS: dict[str, MessageStatus] = {
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "partially_delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
# Our statuses a provider status may move forward; `cancelled`/`skipped` rows were never sent.
# A callback for a message still in flight (its worker died, or has not recorded yet) also
# resolves it, and that first message then needs its follow-up.
RECORDED = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
)
UPDATABLE = IN_FLIGHT_STATUSES + RECORDED


def provider_rank_sql(column: sa.ColumnElement[str | None]) -> sa.ColumnElement[int]:
    return sa.case(*((column == name, rank) for name, rank in PROVIDER_RANK.items()), else_=0)


@dataclass(frozen=True)
class StatusUpdate:
    provider_status: str
    message_id: int | None = None
    provider_sid: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class Applied(enum.StrEnum):
    """What one status update did."""

    APPLIED = "applied"
    NO_CHANGE = "no change"  # a duplicate, a late arrival, a message not ours to move
    NO_MESSAGE = "no message"  # no row has this id or SID (yet: the worker may record it)
    BUSY = "busy"  # the row was locked by someone else (skip_locked): try again shortly


_MESSAGE_COLUMNS = (
    T.c.id,
    T.c.status,
    T.c.provider_status,
    T.c.provider_sid,
    T.c.step,
    T.c.contact_id,
    T.c.sent_at,
    T.c.delivered_at,
    T.c.failed_at,
    T.c.error_code,
    T.c.error_message,
)
_WRITTEN = (
    "status",
    "provider_status",
    "provider_sid",
    "sent_at",
    "delivered_at",
    "failed_at",
    "error_code",
    "error_message",
)


def _rank(provider_status: str | None) -> int:
    return PROVIDER_RANK.get(provider_status or "", 0)


def _matches(row: dict[str, Any], update: StatusUpdate) -> bool:
    # Found by our id, a callback's SID must agree with the one we recorded (if any).
    if update.message_id is not None:
        return not update.provider_sid or row["provider_sid"] in (None, update.provider_sid)
    return row["provider_sid"] == update.provider_sid


def _apply(row: dict[str, Any], update: StatusUpdate, status: str, now: datetime) -> bool:
    """One update on the row's current values, in memory: the rules of the SQL that used to do
    it row by row. Returns whether it changed anything."""
    rank = PROVIDER_RANK.get(status)
    if row["status"] not in UPDATABLE:
        return False
    if rank is None:
        # A status value we have never seen: keep it for the record while nothing final is set.
        if _rank(row["provider_status"]) >= 5:
            return False
        row["provider_status"] = status
        return True
    if _rank(row["provider_status"]) >= rank:
        return False
    in_flight = row["status"] in IN_FLIGHT_STATUSES
    new_status = PROVIDER_TO_STATUS.get(status, MessageStatus.SENT)
    row["provider_status"] = status
    row["status"] = new_status
    if update.provider_sid and row["provider_sid"] is None:
        row["provider_sid"] = update.provider_sid
    row["sent_at"] = row["sent_at"] or now
    if new_status == MessageStatus.DELIVERED:
        row["delivered_at"] = row["delivered_at"] or now
    elif new_status in FAILED_STATUSES:
        row["failed_at"] = row["failed_at"] or now
        row["error_code"] = update.error_code
        row["error_message"] = update.error_message
    elif in_flight:
        row["error_message"] = None  # the "read timeout" that left it unknown
    return True


def apply_status_updates(
    updates: Sequence[StatusUpdate], *, skip_locked: bool = False, now: datetime | None = None
) -> list[Applied]:
    """Apply provider statuses in bulk, in the order given; returns what each one did. The
    caller commits.

    Monotonic: a status only replaces one of lower rank, so a late `sent` never overwrites
    `delivered` and a duplicate changes nothing; unknown provider statuses are stored but move
    nothing. Several updates of one message are applied one after another on its locked row, as
    if they had come one by one. A message still `sending` or `unknown` is resolved: it becomes
    `sent` (or its final status) with the SID, and a first message gets its follow-up
    (`after_first_accepted`, once), so a worker that died after the provider accepted loses
    nothing.

    A few statements whatever the number of updates: the messages are read and locked by id and
    SID in one (`skip_locked`: rows someone else holds are left alone and their updates come
    back BUSY, so a bulk applier never waits on a worker's transaction), changed rows are
    written by one executemany, then follow-ups and exclusions.
    """
    now = now or utcnow()
    statuses = [(update.provider_status or "").strip().lower()[:40] for update in updates]
    outcomes = [Applied.NO_CHANGE] * len(updates)
    ids = {u.message_id for u in updates if u.message_id is not None}
    sids = {u.provider_sid for u in updates if u.message_id is None and u.provider_sid}
    if not ids and not sids:
        return outcomes
    found = sa.or_(
        *([T.c.id.in_(sorted(ids))] if ids else []),
        *([T.c.provider_sid.in_(sorted(sids))] if sids else []),
    )
    rows = {
        row.id: row._asdict()
        for row in db.session.execute(
            sa.select(*_MESSAGE_COLUMNS)
            .where(found)
            .order_by(T.c.id)
            .with_for_update(skip_locked=skip_locked)
        )
    }
    by_sid = {row["provider_sid"]: row for row in rows.values() if row["provider_sid"]}
    missing_ids = ids - rows.keys()
    missing_sids = sids - by_sid.keys()
    busy_ids: set[int] = set()
    busy_sids: set[str] = set()
    if skip_locked and (missing_ids or missing_sids):
        # Not locked and read: absent, or held by someone else right now?
        for row in db.session.execute(
            sa.select(T.c.id, T.c.provider_sid).where(
                sa.or_(
                    *([T.c.id.in_(sorted(missing_ids))] if missing_ids else []),
                    *([T.c.provider_sid.in_(sorted(missing_sids))] if missing_sids else []),
                )
            )
        ):
            busy_ids.add(row.id)
            if row.provider_sid:
                busy_sids.add(row.provider_sid)
    before = {message_id: dict(row) for message_id, row in rows.items()}
    excluded: list[tuple[int, str, int]] = []
    for n, (update, status) in enumerate(zip(updates, statuses, strict=True)):
        if not status or (update.message_id is None and not update.provider_sid):
            continue
        if update.message_id is not None:
            row = rows.get(update.message_id)
            busy = update.message_id in busy_ids
        else:
            row = by_sid.get(update.provider_sid)
            busy = update.provider_sid in busy_sids
        if row is None:
            outcomes[n] = Applied.BUSY if busy else Applied.NO_MESSAGE
            continue
        if not _matches(row, update) or not _apply(row, update, status, now):
            continue
        outcomes[n] = Applied.APPLIED
        if status in PROVIDER_RANK and update.error_code in EXCLUDE_AT_ONCE_CODES:
            excluded.append((row["contact_id"], update.error_code, row["id"]))
    changed = [
        row
        for message_id, row in rows.items()
        if any(row[k] != before[message_id][k] for k in _WRITTEN)
    ]
    if changed:
        db.session.execute(
            sa.update(T)
            .where(T.c.id == sa.bindparam("_id"))
            .values(**{k: sa.bindparam(f"_{k}") for k in _WRITTEN}, updated_at=now),
            [{"_id": row["id"], **{f"_{k}": row[k] for k in _WRITTEN}} for row in changed],
        )
    # First messages this resolved (they were in flight): their follow-ups, from acceptance.
    resolved: dict[datetime, list[int]] = {}
    for row in changed:
        if (
            before[row["id"]]["status"] in IN_FLIGHT_STATUSES
            and row["status"] in RECORDED
            and row["step"] == Step.FIRST
        ):
            resolved.setdefault(row["sent_at"], []).append(row["id"])
    for accepted_at, message_ids in resolved.items():
        after_first_accepted(message_ids, accepted_at)
    for contact_id, code, message_id in excluded:
        exclude_contacts(
            [contact_id],
            ExcludeReason.UNDELIVERABLE,
            f"carrier error {code} on message {message_id}",
        )
    return outcomes


def apply_status_update(update: StatusUpdate) -> bool:
    """Apply one provider status to its message (found by our id, else by SID); returns whether
    anything changed. The caller commits. See `apply_status_updates`: the same rules, waiting
    for a row another transaction holds."""
    return apply_status_updates([update])[0] is Applied.APPLIED
