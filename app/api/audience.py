"""Segments, contacts and messages in the API: segments listed and counted; a contact found by
phone (any format), edited, unsubscribed or resubscribed, its timeline; a message by our id or
the provider's SID. Every rule is the dashboard's own service."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, request

from app.api.auth import api_user, needs
from app.api.common import client_ip, get_or_problem, json_body, keyset_page
from app.api.problems import ApiProblem
from app.api.routes import bp
from app.api.schemas import Contact as ContactBody
from app.api.schemas import (
    ContactPatch,
    ContactQuery,
    PageQuery,
    SegmentCount,
    SegmentCountQuery,
    SegmentList,
    SegmentOut,
    SubscriptionChange,
    SubscriptionResult,
    Timeline,
    TimelineItem,
)
from app.api.schemas import Message as MessageBody
from app.api.spec import api, responses
from app.contacts.phones import normalize_phone
from app.contacts.services import (
    contact_timeline,
    format_attributes,
    set_subscription,
    update_contact,
)
from app.extensions import db, get_redis
from app.models import Contact, OutboundMessage, Role, Segment
from app.security import public
from app.segments.services import CountCache, count_segment_contacts

TAG_SEGMENTS, TAG_CONTACTS, TAG_MESSAGES = ["segments"], ["contacts"], ["messages"]


# -- segments ----------------------------------------------------------------------------------
@bp.get("/v1/segments")
@public
@api.validate(
    query=PageQuery, resp=responses(SegmentList), tags=TAG_SEGMENTS, operation_id="listSegments"
)
def list_segments():
    """Saved segments, newest first; count one with /segments/{id}/count."""
    query: PageQuery = request.context.query
    rows, following = keyset_page(sa.select(Segment), Segment.id, query.cursor, query.limit)
    return SegmentList(
        items=[
            SegmentOut(
                id=s.id,
                name=s.name,
                description=s.description or "",
                raw_sql=bool(s.raw_sql),
                created_at=getattr(s, "created_at", None),
            )
            for s in rows
        ],
        next_cursor=following,
    )


@bp.get("/v1/segments/<int:segment_id>/count")
@public
@api.validate(
    query=SegmentCountQuery,
    resp=responses(SegmentCount),
    tags=TAG_SEGMENTS,
    operation_id="countSegment",
)
def count_segment(segment_id: int):
    """How many eligible people the segment selects now (never unsubscribed or excluded;
    broadcasts also skip upload-only contacts)."""
    segment = get_or_problem(Segment, segment_id, "segment")
    query: SegmentCountQuery = request.context.query
    cache = CountCache(get_redis(current_app), current_app.config["REDIS_KEY_PREFIX"])
    count = count_segment_contacts(segment, purpose=query.purpose, cache=cache)
    db.session.rollback()
    return SegmentCount(id=segment.id, eligible_contacts=count, purpose=query.purpose)


# -- contacts ----------------------------------------------------------------------------------
def contact_body(contact: Contact) -> ContactBody:
    return ContactBody(
        id=contact.id,
        phone=contact.phone,
        name=contact.name,
        email=contact.email,
        zip_code=contact.zip_code,
        attributes=contact.attributes or {},
        unsubscribed=contact.unsubscribed,
        unsubscribed_at=contact.unsubscribed_at,
        unsubscribe_reason=contact.unsubscribe_reason,
        excluded=contact.excluded,
        excluded_at=contact.excluded_at,
        exclude_reason=contact.exclude_reason.value if contact.exclude_reason else None,
        source=contact.source.value,
        created_at=getattr(contact, "created_at", None),
    )


@bp.get("/v1/contacts")
@public
@api.validate(
    query=ContactQuery, resp=responses(ContactBody), tags=TAG_CONTACTS, operation_id="findContact"
)
def find_contact():
    """The contact with this phone number, written any way ((313) 555-1234, 313.555.1234, +1…)."""
    query: ContactQuery = request.context.query
    phone = normalize_phone(query.phone)
    if phone is None:
        raise ApiProblem(422, f"phone: {query.phone[:40]!r} is not a phone number.", field="phone")
    contact = db.session.scalar(sa.select(Contact).where(Contact.phone == phone))
    if contact is None:
        raise ApiProblem(404, f"No contact has the number {phone}.")
    return contact_body(contact)


@bp.get("/v1/contacts/<int:contact_id>")
@public
@api.validate(resp=responses(ContactBody), tags=TAG_CONTACTS, operation_id="getContact")
def get_contact(contact_id: int):
    """One contact."""
    return contact_body(get_or_problem(Contact, contact_id, "contact"))


@bp.patch("/v1/contacts/<int:contact_id>")
@public
@needs(Role.OPERATOR)
@api.validate(
    json=ContactPatch, resp=responses(ContactBody), tags=TAG_CONTACTS, operation_id="patchContact"
)
def patch_contact(contact_id: int):
    """Change name, email, zip code or attributes (the given ones; attributes replace them all)."""
    contact = get_or_problem(Contact, contact_id, "contact")
    patch: ContactPatch = json_body()
    given = patch.model_fields_set
    update_contact(
        contact,
        name=(patch.name or "") if "name" in given else (contact.name or ""),
        email=(patch.email or "") if "email" in given else (contact.email or ""),
        zip_code=(patch.zip_code or "") if "zip_code" in given else (contact.zip_code or ""),
        attributes_text=format_attributes(
            (patch.attributes or {}) if "attributes" in given else (contact.attributes or {})
        ),
        user=api_user(),
        ip_address=client_ip(),
        zip_region=current_app.config["PHONE_REGION"],
    )
    db.session.commit()
    return contact_body(contact)


def _subscription(contact_id: int, subscribed: bool) -> SubscriptionResult:
    contact = get_or_problem(Contact, contact_id, "contact")
    body: SubscriptionChange = json_body()
    cancelled = set_subscription(
        contact, subscribed=subscribed, reason=body.reason, user=api_user(), ip_address=client_ip()
    )
    db.session.commit()
    return SubscriptionResult(contact=contact_body(contact), cancelled_messages=cancelled)


@bp.post("/v1/contacts/<int:contact_id>/unsubscribe")
@public
@needs(Role.OPERATOR)
@api.validate(
    json=SubscriptionChange,
    resp=responses(SubscriptionResult),
    tags=TAG_CONTACTS,
    operation_id="unsubscribeContact",
)
def unsubscribe_contact(contact_id: int):
    """Unsubscribe (with a reason, for the audit log); its pending messages are cancelled."""
    return _subscription(contact_id, False)


@bp.post("/v1/contacts/<int:contact_id>/resubscribe")
@public
@needs(Role.OPERATOR)
@api.validate(
    json=SubscriptionChange,
    resp=responses(SubscriptionResult),
    tags=TAG_CONTACTS,
    operation_id="resubscribeContact",
)
def resubscribe_contact(contact_id: int):
    """Resubscribe (with a reason, for the audit log)."""
    return _subscription(contact_id, True)


@bp.get("/v1/contacts/<int:contact_id>/timeline")
@public
@api.validate(resp=responses(Timeline), tags=TAG_CONTACTS, operation_id="getContactTimeline")
def get_timeline(contact_id: int):
    """Every message to and from the contact, newest first (the latest 100 of each way)."""
    contact = get_or_problem(Contact, contact_id, "contact")
    return Timeline(
        contact_id=contact.id,
        items=[
            TimelineItem(
                at=entry.at,
                direction=entry.direction,
                body=entry.body,
                status=entry.status,
                detail=entry.detail,
                send=entry.send,
                due=entry.due,
            )
            for entry in contact_timeline(contact)
        ],
    )


# -- messages ----------------------------------------------------------------------------------
@bp.get("/v1/messages/<message_ref>")
@public
@api.validate(resp=responses(MessageBody), tags=TAG_MESSAGES, operation_id="getMessage")
def get_message(message_ref: str):
    """One outbound message by our id (digits) or the provider's id (a Twilio SID, SM…)."""
    message = None
    if message_ref.isdigit() and len(message_ref) <= 18:
        message = db.session.get(OutboundMessage, int(message_ref))
    elif 0 < len(message_ref) <= 64:
        message = db.session.scalar(
            sa.select(OutboundMessage).where(OutboundMessage.provider_sid == message_ref).limit(1)
        )
    if message is None:
        raise ApiProblem(404, f"There is no message {message_ref[:64]!r}.")
    return MessageBody(
        id=message.id,
        broadcast_id=message.broadcast_id,
        campaign_id=message.campaign_id,
        contact_id=message.contact_id,
        phone=message.contact.phone,
        step=message.step.value,
        body=message.body,
        status=str(message.status.value if hasattr(message.status, "value") else message.status),
        provider_sid=message.provider_sid,
        provider_status=message.provider_status,
        error_code=message.error_code,
        error_message=message.error_message,
        attempts=message.attempts,
        scheduled_for=message.scheduled_for,
        sent_at=message.sent_at,
        delivered_at=message.delivered_at,
        failed_at=message.failed_at,
        sms_segments=message.sms_segments,
        cancel_reason=message.cancel_reason,
    )
