"""The sidebar's own lookup: which contact a Missive conversation is with."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from app.contacts.phones import normalize_phone
from app.extensions import db
from app.models import Contact, MissiveConversation

MAX_PHONES = 20


def conversation_phones(raw: Iterable[str], own_numbers: Iterable[str]) -> list[str]:
    """The E.164 numbers of a conversation's messages (from and to fields), without our own
    sending numbers, in the order given, each once."""
    own = {normalize_phone(n) for n in own_numbers if n}
    phones: list[str] = []
    for value in raw:
        phone = normalize_phone((value or "")[:40])
        if phone and phone not in own and phone not in phones:
            phones.append(phone)
    return phones[:MAX_PHONES]


def conversation_contact(missive_id: str, phones: list[str]) -> Contact | None:
    """The contact of a Missive conversation: the one our mirror links it to, else the contact
    with one of its numbers (the first number that is a contact)."""
    if missive_id:
        linked = db.session.scalar(
            sa.select(Contact)
            .join(MissiveConversation, MissiveConversation.contact_id == Contact.id)
            .where(MissiveConversation.missive_id == missive_id[:64])
        )
        if linked is not None:
            return linked
    if not phones:
        return None
    found = {
        c.phone: c for c in db.session.scalars(sa.select(Contact).where(Contact.phone.in_(phones)))
    }
    return next((found[p] for p in phones if p in found), None)
