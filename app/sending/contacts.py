"""What a provider's answer does to the recipient: unsubscribe (21610) or exclude (bad number)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from app.audit.services import record_audit
from app.extensions import db
from app.models import Contact, ExcludeReason, utcnow
from app.sending.cancel import cancel_pending_messages

# Twilio delivery errors that mean the number can never take an SMS (SPEC 8a).
EXCLUDE_AT_ONCE_CODES = frozenset({"30005", "30006"})


def unsubscribe_contacts(contact_ids: Iterable[int], reason: str) -> int:
    """Unsubscribe (if not already) and cancel everything pending to them; the caller commits."""
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    changed = db.session.execute(
        sa.update(Contact)
        .where(Contact.id.in_(ids), Contact.unsubscribed.is_(False))
        .values(unsubscribed=True, unsubscribed_at=utcnow(), unsubscribe_reason=reason[:200])
        .returning(Contact.id, Contact.phone)
        .execution_options(synchronize_session=False)
    ).all()
    cancel_pending_messages(ids, "unsubscribed")
    for contact_id, phone in changed:
        record_audit(
            "contact.unsubscribed",
            actor="sending engine",
            object_type="contact",
            object_id=contact_id,
            summary=f"{phone} unsubscribed: {reason}",
        )
    return len(changed)


def exclude_contacts(contact_ids: Iterable[int], reason: ExcludeReason, detail: str) -> int:
    """Exclude (if not already) and cancel everything pending to them; the caller commits."""
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    changed = db.session.execute(
        sa.update(Contact)
        .where(Contact.id.in_(ids), Contact.excluded.is_(False))
        .values(excluded=True, excluded_at=utcnow(), exclude_reason=reason)
        .returning(Contact.id, Contact.phone)
        .execution_options(synchronize_session=False)
    ).all()
    cancel_pending_messages(ids, f"excluded ({reason.value})")
    for contact_id, phone in changed:
        record_audit(
            "contact.excluded",
            actor="sending engine",
            object_type="contact",
            object_id=contact_id,
            summary=f"{phone} excluded ({reason.value}): {detail}",
        )
    return len(changed)
