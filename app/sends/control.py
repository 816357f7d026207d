"""Stopping a send that is under way: one service for broadcasts and campaigns alike."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.audit.services import record_audit
from app.extensions import db
from app.models import (
    IN_FLIGHT_STATUSES,
    PENDING_STATUSES,
    Broadcast,
    BroadcastStatus,
    CampaignStatus,
    MessageStatus,
    User,
    utcnow,
)
from app.sending.cancel import SEND_CANCELLED_REASON
from app.sends import Send, is_sending, send_column, send_kind, send_label
from app.sends.stats import refresh_stats
from app.validation import ValidationError


def cancel_preview(send: Send) -> dict[str, int]:
    """What cancelling now would do, for the confirmation: `waiting` messages (scheduled,
    queued, retrying) become cancelled; `in_flight` ones (a worker holds them, or the provider
    may have them) keep their outcome."""
    column = send_column(send)
    table = column.table
    counts = dict(
        db.session.execute(
            sa.select(table.c.status, sa.func.count())
            .where(column == send.id, table.c.status.in_((*PENDING_STATUSES, *IN_FLIGHT_STATUSES)))
            .group_by(table.c.status)
        ).all()
    )
    return {
        "waiting": sum(counts.get(status, 0) for status in PENDING_STATUSES),
        "in_flight": sum(counts.get(status, 0) for status in IN_FLIGHT_STATUSES),
    }


def cancel_send(
    send: Send, *, user: User | None, now: datetime | None = None, ip_address: str | None = None
) -> int:
    """Cancel a sending broadcast or campaign: every message still waiting (scheduled, queued,
    retrying, follow-ups included) becomes `cancelled` with reason "send cancelled", and no
    follow-up is created for it any more. Messages a worker holds at this moment are checked
    again before they go out (the engine skips them) or, if already with the provider, keep
    their outcome. Returns how many messages were cancelled; audited; the caller commits.

    The send's row is locked first (and its status read again): two cancels at once cancel it
    once, and a worker recording an acceptance at this moment either commits its follow-up
    before (cancelled here) or sees the cancel (see `after_first_accepted`).
    """
    db.session.refresh(send, with_for_update=True)
    if not is_sending(send):
        raise ValidationError(f"{send_label(send)} is not sending, so there is nothing to cancel.")
    now = now or utcnow()
    column = send_column(send)
    table = column.table
    cancelled = (
        db.session.execute(
            sa.update(table)
            .where(column == send.id, table.c.status.in_(PENDING_STATUSES))
            .values(
                status=MessageStatus.CANCELLED, cancel_reason=SEND_CANCELLED_REASON, updated_at=now
            )
        ).rowcount
        or 0
    )
    send.status = (
        BroadcastStatus.CANCELLED if isinstance(send, Broadcast) else CampaignStatus.CANCELLED
    )
    send.cancelled_at = now
    send.cancelled_by_id = user.id if user else None
    send.finished_at = now
    if not isinstance(send, Broadcast):
        send.status_note = f"Cancelled by {user.name or user.email if user else 'the system'}."
    refresh_stats(send, now)
    record_audit(
        # Spelled out, not built from send_kind: tests/test_labels.py finds every action in the source.
        "broadcast.cancel" if isinstance(send, Broadcast) else "campaign.cancel",
        user=user,
        object_type=send_kind(send)[:-1],
        object_id=send.id,
        summary=f"Cancelled {send_label(send)}: {cancelled:,} waiting messages cancelled",
        ip_address=ip_address,
    )
    return cancelled
