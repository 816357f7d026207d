"""What the engine shows people: messages by status, and the "Needs attention" list with the
two ways a person may resolve an entry (SPEC 6.4: never resent automatically)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.audit.services import record_audit
from app.extensions import db
from app.models import IN_FLIGHT_STATUSES, Contact, MessageStatus, OutboundMessage, User, utcnow
from app.sending.engine import status_is
from app.sending.outbound import after_first_accepted
from app.sending.recovery import NEEDS_ATTENTION_PREFIX
from app.validation import ValidationError

STATUS_ORDER = [status.value for status in MessageStatus]
T = OutboundMessage.__table__


def messages_by_status(since: datetime | None = None) -> dict[str, int]:
    """Counts of outbound messages per status (created since `since`), every status listed."""
    query = sa.select(T.c.status, sa.func.count()).group_by(T.c.status)
    if since is not None:
        query = query.where(T.c.created_at >= since)
    counts = {status: 0 for status in STATUS_ORDER}
    counts.update({str(status): n for status, n in db.session.execute(query)})
    return counts


def needs_attention_filter(stale_seconds: int, now: datetime | None = None):
    """Unknown after recovery asked the provider, or claimed far longer than any batch takes."""
    now = now or utcnow()
    long_ago = now - timedelta(seconds=stale_seconds * 3)
    return sa.or_(
        sa.and_(
            OutboundMessage.status == MessageStatus.UNKNOWN,
            OutboundMessage.error_message.startswith(NEEDS_ATTENTION_PREFIX),
        ),
        sa.and_(
            OutboundMessage.status.in_(IN_FLIGHT_STATUSES),
            OutboundMessage.claimed_at < long_ago,
        ),
    )


def needs_attention_query(stale_seconds: int) -> sa.Select:
    return (
        sa.select(OutboundMessage)
        .join(Contact, Contact.id == OutboundMessage.contact_id)
        .where(needs_attention_filter(stale_seconds))
        .options(sa.orm.contains_eager(OutboundMessage.contact))
        .order_by(OutboundMessage.claimed_at, OutboundMessage.id)
    )


def needs_attention_count(stale_seconds: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(T).where(needs_attention_filter(stale_seconds))
    )


def resolve_attention(message_id: int, *, was_sent: bool, user: User) -> OutboundMessage:
    """A person decides: the recipient got it (`sent`), or it was not sent (`queued` again).

    Only a message still unknown or stuck in `sending` can be resolved, so two people clicking
    at once resolve it once. "It was sent" counts as accepted when the worker handed it over
    (its claim time), and a first message gets its follow-up from there. Audited; the caller
    commits.
    """
    message = db.session.get(OutboundMessage, message_id)
    if message is None:
        raise ValidationError("That message does not exist.")
    new_status = MessageStatus.SENT if was_sent else MessageStatus.QUEUED
    accepted_at = message.claimed_at or utcnow()
    changed = db.session.execute(
        sa.update(T)
        .where(T.c.id == message_id, status_is(*IN_FLIGHT_STATUSES))
        .values(
            status=new_status,
            claimed_at=None,
            next_attempt_at=None,
            error_message=f"Resolved by {user.email}: " + ("sent" if was_sent else "send again"),
            sent_at=accepted_at if was_sent else None,
        )
    ).rowcount
    if not changed:
        raise ValidationError(
            f"Message {message_id} is {message.status.value} now: someone or something already "
            "resolved it."
        )
    if was_sent:
        after_first_accepted([message_id], accepted_at)
    record_audit(
        "message.resolved",
        user=user,
        object_type="outbound_message",
        object_id=message_id,
        summary=(
            f"Marked message {message_id} to {message.contact.phone} as "
            + ("sent" if was_sent else "not sent; queued to send again")
        ),
    )
    db.session.expire(message)
    return message
