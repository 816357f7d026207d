"""Contacts: searching and filtering, the message timeline, subscription and exclusion, edits."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.audit.services import record_audit
from app.contacts.fields import FieldProblem, check_email, check_zip_code
from app.contacts.phones import looks_like_phone, normalize_phone
from app.extensions import db
from app.models import (
    Contact,
    ContactSource,
    ExcludeReason,
    InboundMessage,
    MissiveConversation,
    MissiveConversationLabel,
    MissiveLabel,
    OutboundMessage,
    UploadContact,
    User,
    utcnow,
)
from app.sending.cancel import cancel_pending_messages
from app.validation import ValidationError

MAX_ATTRIBUTES = 50
TIMELINE_LIMIT = 200


class ContactStatus(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    EXCLUDED = "excluded"


def contacts_query(
    search: str = "", status: str = "", source: str = "", upload_id: int | None = None
) -> sa.Select[tuple[Contact]]:
    """Newest first; `search` matches phone (any format), name or email; filters by status/source."""
    query = sa.select(Contact).order_by(Contact.id.desc())
    search = search.strip()
    if search:
        phone = normalize_phone(search) if looks_like_phone(search) else None
        digits = re.sub(r"\D", "", search)
        pattern = f"%{search.lower()}%"
        clauses = [
            sa.func.lower(Contact.name).like(pattern),
            sa.func.lower(Contact.email).like(pattern),
        ]
        if phone:
            clauses.append(Contact.phone == phone)
        if len(digits) >= 3:
            clauses.append(Contact.phone.like(f"%{digits}%"))
        query = query.where(sa.or_(*clauses))
    if status == ContactStatus.SUBSCRIBED:
        query = query.where(Contact.unsubscribed.is_(False), Contact.excluded.is_(False))
    elif status == ContactStatus.UNSUBSCRIBED:
        query = query.where(Contact.unsubscribed.is_(True))
    elif status == ContactStatus.EXCLUDED:
        query = query.where(Contact.excluded.is_(True))
    if source in {s.value for s in ContactSource}:
        query = query.where(Contact.source == source)
    if upload_id is not None:
        query = query.where(
            Contact.id.in_(
                sa.select(UploadContact.contact_id).where(UploadContact.upload_id == upload_id)
            )
        )
    return query


@dataclass
class ContactRowInfo:
    last_message_at: datetime | None
    labels: list[str]


def row_info(contact_ids: list[int]) -> dict[int, ContactRowInfo]:
    """Last message (in or out) and active label names for one page of contacts, in 3 queries."""
    info = {cid: ContactRowInfo(None, []) for cid in contact_ids}
    if not contact_ids:
        return info
    last_out = db.session.execute(
        sa.select(OutboundMessage.contact_id, sa.func.max(OutboundMessage.created_at))
        .where(OutboundMessage.contact_id.in_(contact_ids))
        .group_by(OutboundMessage.contact_id)
    )
    last_in = db.session.execute(
        sa.select(InboundMessage.contact_id, sa.func.max(InboundMessage.received_at))
        .where(InboundMessage.contact_id.in_(contact_ids))
        .group_by(InboundMessage.contact_id)
    )
    for contact_id, at in [*last_out, *last_in]:
        current = info[contact_id].last_message_at
        if at is not None and (current is None or at > current):
            info[contact_id].last_message_at = at
    labels = db.session.execute(
        sa.select(MissiveConversation.contact_id, MissiveLabel.name)
        .join(
            MissiveConversationLabel,
            MissiveConversationLabel.conversation_id == MissiveConversation.id,
        )
        .join(MissiveLabel, MissiveLabel.id == MissiveConversationLabel.label_id)
        .where(
            MissiveConversation.contact_id.in_(contact_ids),
            MissiveConversationLabel.removed.is_(False),
        )
        .order_by(MissiveLabel.name)
        .distinct()
    )
    for contact_id, name in labels:
        info[contact_id].labels.append(name)
    return info


@dataclass
class TimelineEntry:
    at: datetime
    direction: str  # "out" or "in"
    body: str
    status: str
    detail: str
    send: str  # "Broadcast #3", "Campaign #2", ""
    anchor: str = ""  # the entry's DOM id, so a reply can point at the message it answers
    due: bool = False  # `at` is when it was (or is) planned to go out, not when it happened
    answers: str = ""  # the answered message's anchor (a reply within the window), else ""
    answers_body: str = ""


def timeline_anchor(direction: str, message_id: int) -> str:
    return f"contacts-timeline-{direction}-{message_id}"


def contact_timeline(contact: Contact, limit: int = TIMELINE_LIMIT) -> list[TimelineEntry]:
    """Every message to and from the contact, newest first (the latest `limit` of each)."""
    outbound = db.session.scalars(
        sa.select(OutboundMessage)
        .where(OutboundMessage.contact_id == contact.id)
        .order_by(OutboundMessage.created_at.desc())
        .limit(limit)
    )
    inbound = db.session.scalars(
        sa.select(InboundMessage)
        .where(InboundMessage.contact_id == contact.id)
        .options(selectinload(InboundMessage.reply_to))
        .order_by(InboundMessage.received_at.desc())
        .limit(limit)
    )
    entries = []
    for m in outbound:
        send = f"Broadcast #{m.broadcast_id}" if m.broadcast_id else f"Campaign #{m.campaign_id}"
        detail = (
            f"cancelled: {m.cancel_reason}"
            if m.cancel_reason and m.status == "cancelled"
            else m.cancel_reason
            or (f"error {m.error_code}" if m.error_code else (m.provider_status or ""))
        )
        if detail == str(m.status):
            detail = ""  # the provider's word for what the badge already says ("delivered")
        entries.append(
            TimelineEntry(
                at=m.sent_at or m.scheduled_for or m.created_at,
                direction="out",
                body=m.body,
                status=str(m.status),
                detail=f"{m.step} message" + (f" · {detail}" if detail else ""),
                send=send,
                anchor=timeline_anchor("out", m.id),
                due=m.sent_at is None and m.scheduled_for is not None,
            )
        )
    keyword_effect = {"stop": "opt-out", "start": "opt-in", "help": "help request"}
    for m in inbound:
        detail = [
            keyword_effect[m.keyword] if m.keyword else "",
            f"via {str(m.provider).capitalize()}",
        ]
        send = ""
        if m.reply_to is not None:
            answered = m.reply_to
            send = (
                f"Broadcast #{answered.broadcast_id}"
                if answered.broadcast_id
                else f"Campaign #{answered.campaign_id}"
            )
            detail.insert(0, f"answers the {answered.step} message")
        entries.append(
            TimelineEntry(
                at=m.received_at,
                direction="in",
                body=m.body,
                status=str(m.keyword) if m.keyword else "reply",
                detail=" · ".join(part for part in detail if part),
                send=send,
                anchor=timeline_anchor("in", m.id),
                answers=timeline_anchor("out", m.reply_to.id) if m.reply_to else "",
                answers_body=m.reply_to.body if m.reply_to else "",
            )
        )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


def contact_labels(contact: Contact) -> list[MissiveConversationLabel]:
    return list(
        db.session.scalars(
            sa.select(MissiveConversationLabel)
            .join(MissiveConversation)
            .where(MissiveConversation.contact_id == contact.id)
            .options(selectinload(MissiveConversationLabel.label))
            .order_by(MissiveConversationLabel.last_applied_at.desc())
        )
    )


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why, for the audit log.", field="reason")
    if len(reason) > 200:
        raise ValidationError("Keep the reason under 200 characters.", field="reason")
    return reason


def set_subscription(
    contact: Contact,
    *,
    subscribed: bool,
    reason: str,
    user: User | None,
    ip_address: str | None = None,
    actor: str | None = None,
) -> int:
    """Unsubscribe (cancelling pending messages) or resubscribe a contact, audited.
    Returns how many pending messages were cancelled; the caller commits. `actor` names who did
    it when no user did (the person texting STOP, a staff member acting from Missive)."""
    reason = _reason(reason)
    cancelled = 0
    if subscribed:
        contact.unsubscribed = False
        contact.unsubscribed_at = None
        contact.unsubscribe_reason = None
    else:
        contact.unsubscribed = True
        contact.unsubscribed_at = utcnow()
        contact.unsubscribe_reason = reason
        cancelled = cancel_pending_messages([contact.id], "unsubscribed")
    what = "Resubscribed" if subscribed else "Unsubscribed"
    action = "contact_resubscribe" if subscribed else "contact_unsubscribe"
    return _audit_toggle(action, what, contact, reason, cancelled, user, ip_address, actor)


def set_exclusion(
    contact: Contact,
    *,
    excluded: bool,
    reason: str,
    user: User | None,
    ip_address: str | None = None,
) -> int:
    """Exclude (manual reason, cancelling pending messages) or include a contact again, audited."""
    reason = _reason(reason)
    cancelled = 0
    if excluded:
        contact.excluded = True
        contact.excluded_at = utcnow()
        contact.exclude_reason = ExcludeReason.MANUAL
        cancelled = cancel_pending_messages([contact.id], "excluded")
    else:
        contact.excluded = False
        contact.excluded_at = None
        contact.exclude_reason = None
    what = "Excluded" if excluded else "Included again"
    action = "contact_exclude" if excluded else "contact_include"
    return _audit_toggle(action, what, contact, reason, cancelled, user, ip_address)


def _audit_toggle(
    action: str,
    what: str,
    contact: Contact,
    reason: str,
    cancelled: int,
    user: User | None,
    ip_address: str | None,
    actor: str | None = None,
) -> int:
    record_audit(
        action,
        user=user,
        actor=actor,
        obj=contact,
        summary=f"{what} {contact.phone}: {reason}",
        details={"reason": reason, "cancelled_messages": cancelled},
        ip_address=ip_address,
    )
    return cancelled


def parse_attributes(text: str) -> dict[str, str]:
    """`key = value` lines (or `key: value`) into a dict; ValidationError names the bad line."""
    attributes: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValidationError(
                f"Line {number}: write attributes as “name = value”.", field="attributes"
            )
        if len(key) > 64 or len(value) > 500:
            raise ValidationError(
                f"Line {number}: names have at most 64 characters, values 500.", field="attributes"
            )
        attributes[key] = value
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValidationError(f"At most {MAX_ATTRIBUTES} attributes.", field="attributes")
    return attributes


def format_attributes(attributes: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {value}" for key, value in (attributes or {}).items())


def update_contact(
    contact: Contact,
    *,
    name: str,
    email: str,
    zip_code: str,
    attributes_text: str,
    user: User | None,
    ip_address: str | None = None,
    zip_region: str = "",
) -> dict[str, tuple[Any, Any]]:
    """Edit the contact's details, audited; returns what changed (field -> (before, after)).
    The email must be an address (name@example.org) and the zip code one of `zip_region`'s
    (US: 5 digits or ZIP+4); a bad value raises ValidationError naming the field."""
    email = (email or "").strip()
    zip_code = (zip_code or "").strip()
    try:
        email = check_email(email) if email else ""
    except FieldProblem as exc:
        message = f"{exc} Enter an email like name@example.org, or leave it empty."
        raise ValidationError(message, field="email") from None
    try:
        zip_code = check_zip_code(zip_code, zip_region) if zip_code else ""
    except FieldProblem as exc:
        raise ValidationError(str(exc), field="zip_code") from None
    name = (name or "").strip()
    if len(name) > 200:
        raise ValidationError("A name has at most 200 characters.", field="name")
    wanted = {
        "name": name or None,
        "email": email or None,
        "zip_code": zip_code or None,
        "attributes": parse_attributes(attributes_text),
    }
    changes = {
        key: (getattr(contact, key), value)
        for key, value in wanted.items()
        if getattr(contact, key) != value
    }
    for key, (_, value) in changes.items():
        setattr(contact, key, value)
    if changes:
        record_audit(
            "contact_update",
            user=user,
            obj=contact,
            summary=f"Edited {contact.phone}: {', '.join(sorted(changes))}",
            details={k: [str(a), str(b)] for k, (a, b) in changes.items()},
            ip_address=ip_address,
        )
    return changes
