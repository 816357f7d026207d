"""Inbound SMS from either source (Twilio, Missive): stored once, classified, linked to what it
answers, and acted on: opt-out, opt-in, or a reply that cancels the pending follow-up (SPEC 6.5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.audit.services import record_audit
from app.contacts.phones import normalize_phone
from app.contacts.services import set_subscription
from app.extensions import db
from app.inbound.keywords import classify, looks_like_opt_out
from app.inbound.sql import insert_ignore
from app.models import (
    PENDING_STATUSES,
    POSSIBLE_OPT_OUT,
    Contact,
    ContactSource,
    InboundMessage,
    Keyword,
    MessageStatus,
    MissiveConversation,
    OutboundMessage,
    Setting,
    Step,
    User,
    utcnow,
)
from app.sending.cancel import cancel_pending_messages
from app.sending.outbound import first_of_same_send
from app.settings.services import KEYWORDS_SETTING, keyword_lists
from app.validation import ValidationError

MAX_BODY = 10_000  # an SMS is at most 1,600 characters; anything longer is cut, not refused


@dataclass(frozen=True)
class InboundSMS:
    """One inbound SMS as a webhook described it, already checked for shape by the route."""

    provider: str  # "twilio" or "missive"
    provider_id: str
    phone: str  # as the provider wrote it; normalised here
    body: str
    received_at: datetime | None = None
    missive_conversation_id: str | None = None


@dataclass
class InboundResult:
    inbound_id: int | None = None
    duplicate: bool = False
    contact_id: int | None = None
    contact_created: bool = False
    keyword: Keyword | None = None
    possible_opt_out: bool = False  # a reply that reads like one: listed for a person
    reply_to_id: int | None = None
    cancelled: int = 0
    subscription_changed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.duplicate:
            return "duplicate: already stored"
        parts = [f"inbound {self.inbound_id}", str(self.keyword or "reply")]
        if self.possible_opt_out:
            parts.append("possible opt-out: listed for a person")
        if self.reply_to_id:
            parts.append(f"replies to {self.reply_to_id}")
        if self.subscription_changed:
            parts.append("unsubscribed" if self.keyword == Keyword.STOP else "resubscribed")
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        return ", ".join(parts + self.notes)[:200]


def get_or_create_contact(
    phone: str, existing: int | None = None, *, looked_up: bool = False
) -> tuple[int, bool]:
    """The contact with this E.164 number, created (`source = conversation`: the person texted
    in or was synced from Missive) if new. Returns (id, created). A contact that already exists
    keeps its source: a reply to a campaign-only (`upload`) contact is not a broadcast opt-in.
    `looked_up`: the caller has looked for it already and found `existing` (None: no contact)."""
    if not looked_up:
        existing = db.session.scalar(sa.select(Contact.id).where(Contact.phone == phone))
    if existing is not None:  # the common case: no statement, or one
        return existing, False
    new_id = insert_ignore(
        Contact.__table__,
        {
            "phone": phone,
            "source": ContactSource.CONVERSATION.value,
            "attributes": {},
            "created_at": utcnow(),
            "updated_at": utcnow(),
        },
        ["phone"],
    )
    if new_id is not None:
        return new_id, True
    return db.session.scalar(sa.select(Contact.id).where(Contact.phone == phone)), False


def _latest_outbound_query(contact_id, at: datetime, window_hours: int) -> sa.Select:
    return (
        sa.select(OutboundMessage.id)
        .where(
            OutboundMessage.contact_id == contact_id,
            OutboundMessage.sent_at.is_not(None),
            OutboundMessage.sent_at <= at,
            OutboundMessage.sent_at >= at - timedelta(hours=window_hours),
        )
        .order_by(OutboundMessage.sent_at.desc(), OutboundMessage.id.desc())
        .limit(1)
    )


def latest_outbound_within(contact_id: int, at: datetime, window_hours: int) -> int | None:
    """The outbound message a message received `at` answers: the latest one sent to the contact
    in the `window_hours` before it (a message never sent cannot be answered)."""
    return db.session.scalar(_latest_outbound_query(contact_id, at, window_hours))


@dataclass(frozen=True)
class InboundContext:
    keywords: object  # the stored extra keywords (the Settings value), or None
    contact_id: int | None
    reply_to_id: int | None


def inbound_context(phone: str | None, at: datetime, window_hours: int) -> InboundContext:
    """What classifying and linking an SMS from `phone` needs, in one statement: the extra
    keywords, the sender's contact id and the outbound message the SMS answers (the webhook's
    first statement instead of three)."""
    keywords = sa.select(Setting.value).where(Setting.key == KEYWORDS_SETTING).scalar_subquery()
    if phone is None:
        return InboundContext(db.session.scalar(sa.select(keywords)), None, None)
    contact = sa.select(Contact.id).where(Contact.phone == phone).scalar_subquery()
    reply_to = _latest_outbound_query(contact, at, window_hours).scalar_subquery()
    row = db.session.execute(sa.select(keywords, contact, reply_to)).one()
    return InboundContext(row[0], row[1], row[2] if row[1] is not None else None)


def _cancel_after_reply(contact_id: int, at: datetime) -> sa.Update:
    first = OutboundMessage.__table__.alias("first")
    follow = OutboundMessage.__table__
    return (
        sa.update(follow)
        .where(
            follow.c.contact_id == contact_id,
            follow.c.step == Step.SECOND,
            follow.c.status.in_(PENDING_STATUSES),
            first_of_same_send(follow, first),
            sa.func.coalesce(first.c.sent_at, first.c.created_at) <= at,
        )
        .values(status=MessageStatus.CANCELLED, cancel_reason="replied", updated_at=utcnow())
    )


def cancel_follow_ups_after_reply(contact_id: int, at: datetime) -> int:
    """Cancel the contact's pending follow-ups of every send whose first message reached them
    before the reply (reason `replied`): the same rule the engine re-checks when it claims a
    follow-up, so what the dashboard shows now is what will happen. One UPDATE."""
    return db.session.execute(_cancel_after_reply(contact_id, at)).rowcount or 0


def insert_reply(values: dict, contact_id: int, at: datetime) -> tuple[int | None, int]:
    """Store a reply once and cancel the follow-ups it answers, together: returns (the new
    inbound id or None for a duplicate, follow-ups cancelled). On PostgreSQL one statement (the
    cancel runs only when the insert did), elsewhere two."""
    table = InboundMessage.__table__
    if db.session.get_bind().dialect.name != "postgresql":
        inbound_id = insert_ignore(table, values, ["provider_id"])
        if inbound_id is None:
            return None, 0
        return inbound_id, cancel_follow_ups_after_reply(contact_id, at)
    inserted = (
        postgresql.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider_id"])
        .returning(table.c.id)
        .cte("inserted")
    )
    cancelled = (
        _cancel_after_reply(contact_id, at)
        .where(sa.exists(sa.select(inserted.c.id)))
        .returning(OutboundMessage.__table__.c.id)
        .cte("cancelled")
    )
    row = db.session.execute(
        sa.select(
            sa.select(inserted.c.id).scalar_subquery(),
            sa.select(sa.func.count()).select_from(cancelled).scalar_subquery(),
        )
    ).one()
    return row[0], row[1] or 0


def record_inbound(sms: InboundSMS, *, reply_window_hours: int) -> InboundResult:
    """Store the SMS once (its provider id is unique) and act on it; the caller commits.

    A second delivery of the same SMS (a retried webhook, two racing requests) is reported as a
    duplicate and does nothing else. STOP unsubscribes and cancels everything pending, START
    resubscribes, HELP does nothing here (the route answers it), anything else is a reply that
    cancels the pending follow-up.
    """
    received_at = sms.received_at or utcnow()
    phone = normalize_phone(sms.phone)
    context = inbound_context(phone, received_at, reply_window_hours)
    result = InboundResult(keyword=classify(sms.body, keyword_lists(context.keywords)))
    result.possible_opt_out = result.keyword is None and looks_like_opt_out(sms.body)
    if phone is not None:
        result.contact_id, result.contact_created = get_or_create_contact(
            phone, context.contact_id, looked_up=True
        )
        result.reply_to_id = context.reply_to_id
    else:
        result.notes.append("sender is not a phone number")
    values = {
        "provider_id": sms.provider_id,
        "provider": sms.provider,
        "phone": phone or (sms.phone or "")[:20],
        "body": (sms.body or "")[:MAX_BODY],
        "received_at": received_at,
        "contact_id": result.contact_id,
        "reply_to_id": result.reply_to_id,
        "keyword": result.keyword.value if result.keyword else None,
        "review": POSSIBLE_OPT_OUT if result.possible_opt_out and phone else None,
        "missive_conversation_id": sms.missive_conversation_id,
        "created_at": utcnow(),
    }
    if result.keyword is None and result.contact_id is not None and not result.contact_created:
        # A reply: stored and its follow-ups cancelled in one go.
        result.inbound_id, result.cancelled = insert_reply(values, result.contact_id, received_at)
        result.duplicate = result.inbound_id is None
        return result
    result.inbound_id = insert_ignore(InboundMessage.__table__, values, ["provider_id"])
    if result.inbound_id is None:
        result.duplicate = True
        return result
    if result.contact_id is None:
        return result
    if result.keyword == Keyword.STOP:
        contact = db.session.get(Contact, result.contact_id)
        if contact.unsubscribed:
            result.cancelled = cancel_pending_messages([contact.id], "unsubscribed")
        else:
            result.cancelled = set_subscription(
                contact,
                subscribed=False,
                reason=f"texted “{sms.body.strip()[:40]}”",
                user=None,
                actor=f"{phone} (inbound STOP)",
            )
            result.subscription_changed = True
    elif result.keyword == Keyword.START:
        contact = db.session.get(Contact, result.contact_id)
        if contact.unsubscribed:
            set_subscription(
                contact,
                subscribed=True,
                reason=f"texted “{sms.body.strip()[:40]}”",
                user=None,
                actor=f"{phone} (inbound START)",
            )
            result.subscription_changed = True
    return result


# -- possible opt-outs: a person decides ------------------------------------------------------
def possible_opt_outs_query() -> sa.Select[tuple[InboundMessage]]:
    """Replies that read like an opt-out and wait for a decision, oldest first."""
    return (
        sa.select(InboundMessage)
        .where(InboundMessage.review.is_not(None), InboundMessage.review_outcome.is_(None))
        .options(sa.orm.selectinload(InboundMessage.contact))
        .order_by(InboundMessage.received_at, InboundMessage.id)
    )


def possible_opt_out_count() -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(InboundMessage)
        .where(InboundMessage.review.is_not(None), InboundMessage.review_outcome.is_(None))
    )


def resolve_possible_opt_out(inbound_id: int, *, unsubscribe: bool, user: User) -> InboundMessage:
    """A person decides on a reply that reads like an opt-out: unsubscribe its sender (pending
    messages cancelled) or keep them subscribed. Decided once, even when two people click at
    once; audited; the caller commits."""
    message = db.session.get(InboundMessage, inbound_id)
    if message is None or message.review is None:
        raise ValidationError("That reply is not waiting for a decision.")
    outcome = "unsubscribed" if unsubscribe else "kept"
    decided = db.session.execute(
        sa.update(InboundMessage)
        .where(InboundMessage.id == inbound_id, InboundMessage.review_outcome.is_(None))
        .values(review_outcome=outcome, reviewed_at=utcnow(), reviewed_by_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not decided:
        db.session.refresh(message)
        raise ValidationError(f"Someone already decided on this reply ({message.review_outcome}).")
    contact = db.session.get(Contact, message.contact_id) if message.contact_id else None
    quote = f"“{message.body.strip()[:60]}”"
    if unsubscribe and contact is not None and not contact.unsubscribed:
        set_subscription(
            contact,
            subscribed=False,
            reason=f"texted {quote}; confirmed as an opt-out by {user.email}",
            user=user,
        )
    record_audit(
        "inbound.possible_opt_out",
        user=user,
        object_type="inbound_message",
        object_id=inbound_id,
        summary=(
            f"{message.phone} texted {quote}: "
            + ("unsubscribed as an opt-out" if unsubscribe else "kept subscribed (not an opt-out)")
        ),
    )
    db.session.refresh(message)
    return message


def apply_admin_action(contact_id: int, *, unsubscribe: bool, staff_name: str) -> tuple[bool, int]:
    """A staff member's "unsubscribe"/"resubscribe" comment in Missive (SPEC 6.5), audited under
    their name. Returns (changed, messages cancelled); the caller commits."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.unsubscribed == unsubscribe:
        return False, 0
    cancelled = set_subscription(
        contact,
        subscribed=not unsubscribe,
        reason=f"{'unsubscribed' if unsubscribe else 'resubscribed'} from Missive by {staff_name}",
        user=None,
        actor=f"{staff_name} (Missive)",
    )
    return True, cancelled


def conversation_for_contact(contact_id: int, preferred: str | None = None) -> str | None:
    """The Missive conversation to post a note about this contact to: the one the message came
    from, else the contact's most recently updated mirrored conversation, else the one our last
    Missive send went to."""
    if preferred:
        return preferred
    mirrored = db.session.scalar(
        sa.select(MissiveConversation.missive_id)
        .where(MissiveConversation.contact_id == contact_id)
        .order_by(MissiveConversation.updated_at.desc())
        .limit(1)
    )
    if mirrored:
        return mirrored
    return db.session.scalar(
        sa.select(OutboundMessage.missive_conversation_id)
        .where(
            OutboundMessage.contact_id == contact_id,
            OutboundMessage.missive_conversation_id.is_not(None),
        )
        .order_by(OutboundMessage.id.desc())
        .limit(1)
    )
