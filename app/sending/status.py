"""Provider status updates (callbacks, the simulator, reconciliation), applied monotonically."""

from __future__ import annotations

from dataclasses import dataclass

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


def apply_status_update(update: StatusUpdate) -> bool:
    """Apply one provider status to its message (found by our id, else by SID); returns whether
    anything changed. Unknown provider statuses are stored but move nothing. The caller commits.

    The rank check is in the UPDATE's WHERE, so two callbacks racing each other cannot move a
    message backwards. A message still `sending` or `unknown` is resolved by a callback: it
    becomes `sent` (or its final status) with the SID, and a first message gets its follow-up
    (`after_first_accepted`), so a worker that died after the provider accepted loses nothing.
    """
    status = (update.provider_status or "").strip().lower()[:40]
    if not status or (update.message_id is None and not update.provider_sid):
        return False
    rank = PROVIDER_RANK.get(status)
    table = OutboundMessage.__table__
    where = []
    if update.message_id is not None:
        where.append(table.c.id == update.message_id)
        if update.provider_sid:
            where.append(
                sa.or_(table.c.provider_sid.is_(None), table.c.provider_sid == update.provider_sid)
            )
    else:
        where.append(table.c.provider_sid == update.provider_sid)

    now = utcnow()
    if rank is None:
        # A status value we have never seen: keep it for the record while nothing final is set.
        stmt = (
            sa.update(table)
            .where(
                *where,
                table.c.status.in_(UPDATABLE),
                provider_rank_sql(table.c.provider_status) < 5,
            )
            .values(provider_status=status)
        )
        return bool(db.session.execute(stmt).rowcount)

    values: dict = {"provider_status": status}
    new_status = PROVIDER_TO_STATUS.get(status, MessageStatus.SENT)
    values["status"] = new_status
    if update.provider_sid:
        values["provider_sid"] = sa.func.coalesce(table.c.provider_sid, update.provider_sid)
    values["sent_at"] = sa.func.coalesce(table.c.sent_at, now)
    if new_status == MessageStatus.DELIVERED:
        values["delivered_at"] = sa.func.coalesce(table.c.delivered_at, now)
    elif new_status in FAILED_STATUSES:
        values["failed_at"] = sa.func.coalesce(table.c.failed_at, now)
        values["error_code"] = update.error_code
        values["error_message"] = update.error_message
    newer = provider_rank_sql(table.c.provider_status) < rank
    returning = (table.c.id, table.c.contact_id, table.c.step, table.c.sent_at)
    # The usual case first: a message the worker recorded. Two statements at most, each by
    # primary key or the SID's unique index.
    row = db.session.execute(
        sa.update(table)
        .where(*where, table.c.status.in_(RECORDED), newer)
        .values(**values)
        .returning(*returning)
    ).first()
    if row is None:
        if new_status not in FAILED_STATUSES:
            values["error_message"] = None  # the "read timeout" that left it unknown
        row = db.session.execute(
            sa.update(table)
            .where(*where, table.c.status.in_(IN_FLIGHT_STATUSES), newer)
            .values(**values)
            .returning(*returning)
        ).first()
        if row is None:
            return False
        if row.step == Step.FIRST:
            after_first_accepted([row.id], row.sent_at or now)
    if update.error_code in EXCLUDE_AT_ONCE_CODES:
        exclude_contacts(
            [row.contact_id],
            ExcludeReason.UNDELIVERABLE,
            f"carrier error {update.error_code} on message {row.id}",
        )
    return True


def apply_status_updates(updates: list[StatusUpdate]) -> int:
    return sum(apply_status_update(update) for update in updates)
