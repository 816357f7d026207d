"""Cancelling pending outbound messages: used by replies, opt-outs, exclusions and cancelled sends."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from app.extensions import db
from app.models import PENDING_STATUSES, MessageStatus, OutboundMessage, Step

SEND_CANCELLED_REASON = "send cancelled"  # a person cancelled the whole send


def cancel_pending_messages(
    contact_ids: Iterable[int],
    reason: str,
    *,
    broadcast_id: int | None = None,
    campaign_id: int | None = None,
    step: Step | None = None,
) -> int:
    """Cancel the contacts' `scheduled`/`queued`/`retrying` messages; returns how many.

    Narrowed to one send and/or one step when given (a reply cancels only the follow-up of the
    send it answered). A message already claimed by a worker (`sending`) is left alone: the claim
    re-checks eligibility, so an unsubscribed contact's claimed message is skipped there. The
    caller commits, so the cancellation lands together with whatever caused it.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    stmt = (
        sa.update(OutboundMessage)
        .where(
            OutboundMessage.contact_id.in_(ids),
            OutboundMessage.status.in_(PENDING_STATUSES),
        )
        .values(status=MessageStatus.CANCELLED, cancel_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    if broadcast_id is not None:
        stmt = stmt.where(OutboundMessage.broadcast_id == broadcast_id)
    if campaign_id is not None:
        stmt = stmt.where(OutboundMessage.campaign_id == campaign_id)
    if step is not None:
        stmt = stmt.where(OutboundMessage.step == step)
    return db.session.execute(stmt).rowcount or 0
