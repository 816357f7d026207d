"""factory_boy factories for the models, bound to the test session.

Each factory flushes (never commits) and stays cheap: no password hashing, no provider calls.
A message's state is a trait: `OutboundMessageFactory(delivered=True)`, `(follow_up=True)`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import factory
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactSource,
    InboundMessage,
    Keyword,
    MessageStatus,
    MissiveConversation,
    MissiveConversationLabel,
    MissiveLabel,
    OutboundMessage,
    Role,
    Segment,
    Step,
    Upload,
    UploadContact,
    UploadPurpose,
    UploadStatus,
    User,
    utcnow,
)
from app.sending.sms import sms_segments

PASSWORD = "correct-horse-battery"
# Hash once: the default scrypt cost is paid per call and tests create many users.
_PASSWORD_HASH = generate_password_hash(PASSWORD)


class BaseFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    name = factory.Faker("name")
    role = Role.VIEWER
    active = True
    password_hash = _PASSWORD_HASH


class ContactFactory(BaseFactory):
    class Meta:
        model = Contact

    phone = factory.Sequence(lambda n: f"+1313555{n:04d}")
    name = factory.Faker("first_name")
    zip_code = "48201"
    source = ContactSource.CONVERSATION
    attributes = factory.LazyFunction(dict)


class SegmentFactory(BaseFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    rule = factory.LazyFunction(lambda: {"all": []})


class BroadcastFactory(BaseFactory):
    class Meta:
        model = Broadcast

    first_message = "Hello from the newsroom"
    second_message = "Did you see our note?"
    status = BroadcastStatus.UPCOMING
    batch_size = 100

    class Params:
        # Started: many may exist at once (only one broadcast may be upcoming).
        sending = factory.Trait(
            status=BroadcastStatus.SENDING, started_at=factory.LazyFunction(utcnow)
        )


class CampaignFactory(BaseFactory):
    class Meta:
        model = Campaign

    title = factory.Sequence(lambda n: f"Campaign {n}")
    first_message = "A one-off note from the newsroom"
    second_message = "Any thoughts on our note?"
    status = CampaignStatus.DRAFT

    class Params:
        sending = factory.Trait(
            status=CampaignStatus.SENDING, started_at=factory.LazyFunction(utcnow)
        )


class UploadFactory(BaseFactory):
    """An uploaded CSV; `UploadFactory(contacts=[a, b])` also records them as its rows 2, 3, …"""

    class Meta:
        model = Upload

    filename = factory.Sequence(lambda n: f"list{n}.csv")
    purpose = UploadPurpose.CONTACT_IMPORT
    status = UploadStatus.PENDING
    content = b"phone\n"
    size_bytes = factory.LazyAttribute(lambda o: len(o.content or b""))
    columns = factory.LazyFunction(lambda: ["phone"])
    phone_column = "phone"

    class Params:
        done = factory.Trait(
            status=UploadStatus.DONE,
            started_at=factory.LazyFunction(utcnow),
            finished_at=factory.LazyFunction(utcnow),
        )

    @factory.post_generation
    def contacts(upload: Upload, create: bool, contacts: list[Contact] | None, **_) -> None:
        for row_number, contact in enumerate(contacts or [], start=2):  # row 1 is the header
            db.session.add(
                UploadContact(upload_id=upload.id, contact_id=contact.id, row_number=row_number)
            )
        if create and contacts:
            db.session.flush()


def _ago(**delta: float):
    return factory.LazyFunction(lambda: utcnow() - timedelta(**delta))


def _after(field: str, **delta: float):
    return factory.LazyAttribute(lambda o: getattr(o, field) + timedelta(**delta))


def _body(message: OutboundMessage) -> str:
    send = message.broadcast or message.campaign
    text = send.first_message if message.step == Step.FIRST else send.second_message
    return text or "Hello from the newsroom"


class OutboundMessageFactory(BaseFactory):
    """A `queued` first message of a started broadcast, made with its own broadcast and contact
    unless given `broadcast=` or `campaign=` (exactly one of the two: the table checks it).

    Traits: `sent` (accepted: provider SID, sent a minute ago), `delivered`, `undelivered`
    (accepted, then a carrier error), `failed` (refused by the provider, no SID), `replied`
    (sent, with an InboundMessage reply linked to it two minutes later) and `follow_up` (the
    second step, `scheduled` ten minutes from now).
    """

    class Meta:
        model = OutboundMessage

    campaign = None
    broadcast = factory.Maybe(
        "campaign",
        yes_declaration=None,
        no_declaration=factory.SubFactory(BroadcastFactory, sending=True),
    )
    contact = factory.SubFactory(ContactFactory)
    step = Step.FIRST
    body = factory.LazyAttribute(_body)
    sms_segments = factory.LazyAttribute(lambda o: sms_segments(o.body))
    status = MessageStatus.QUEUED

    class Params:
        sent = factory.Trait(
            status=MessageStatus.SENT,
            transport="twilio",
            provider_sid=factory.Sequence(lambda n: f"SM{n:032x}"),
            provider_status="sent",
            sent_at=_ago(minutes=1),
        )
        delivered = factory.Trait(
            sent=True,
            status=MessageStatus.DELIVERED,
            provider_status="delivered",
            delivered_at=_after("sent_at", seconds=30),
        )
        undelivered = factory.Trait(
            sent=True,
            status=MessageStatus.UNDELIVERED,
            provider_status="undelivered",
            error_code="30003",
            error_message="Unreachable destination handset",
            failed_at=_after("sent_at", seconds=30),
        )
        failed = factory.Trait(
            status=MessageStatus.FAILED,
            transport="twilio",
            error_code="21211",
            error_message="Invalid 'To' Phone Number",
            failed_at=_ago(minutes=1),
        )
        replied = factory.Trait(
            sent=True,
            reply=factory.RelatedFactory(
                "tests.factories.InboundMessageFactory",
                factory_related_name="reply_to",
                received_at=factory.LazyAttribute(
                    lambda o: o.reply_to.sent_at + timedelta(minutes=2)
                ),
            ),
        )
        follow_up = factory.Trait(
            step=Step.SECOND,
            status=MessageStatus.SCHEDULED,
            scheduled_for=factory.LazyFunction(lambda: utcnow() + timedelta(minutes=10)),
        )


class InboundMessageFactory(BaseFactory):
    """A text received from a contact's phone; `reply_to=message` makes it that message's reply
    (from the same contact). Trait `stop`: an opt-out."""

    class Meta:
        model = InboundMessage

    provider = "twilio"
    provider_id = factory.Sequence(lambda n: f"SMin{n:030d}")
    reply_to = None
    contact = factory.Maybe(
        "reply_to",
        yes_declaration=factory.SelfAttribute("reply_to.contact"),
        no_declaration=factory.SubFactory(ContactFactory),
    )
    phone = factory.LazyAttribute(lambda o: o.contact.phone if o.contact else "+13135550000")
    body = "Thanks!"
    received_at = factory.LazyFunction(utcnow)

    class Params:
        stop = factory.Trait(keyword=Keyword.STOP, body="STOP")


def sent_with_follow_up(
    contact: Contact,
    broadcast: Broadcast | None = None,
    *,
    sent_at: datetime,
    follow_up_in: timedelta = timedelta(minutes=10),
) -> tuple[OutboundMessage, OutboundMessage]:
    """A first message sent at `sent_at` and its follow-up scheduled `follow_up_in` later, as the
    engine leaves them; the broadcast is a new started one unless given."""
    broadcast = broadcast or BroadcastFactory(sending=True)
    first = OutboundMessageFactory(broadcast=broadcast, contact=contact, sent=True, sent_at=sent_at)
    second = OutboundMessageFactory(
        broadcast=broadcast,
        contact=contact,
        follow_up=True,
        scheduled_for=sent_at + follow_up_in,
    )
    return first, second


# -- the Missive mirror and campaign uploads (appended for the campaign tests) ---------------
class MissiveLabelFactory(BaseFactory):
    """A mirrored Missive shared label."""

    class Meta:
        model = MissiveLabel

    missive_id = factory.Sequence(lambda n: f"label-{n:06d}")
    name = factory.Sequence(lambda n: f"Label {n}")


class MissiveConversationFactory(BaseFactory):
    """A mirrored Missive conversation of a contact."""

    class Meta:
        model = MissiveConversation

    missive_id = factory.Sequence(lambda n: f"conv-{n:06d}")
    contact = factory.SubFactory(ContactFactory)
    phone = factory.LazyAttribute(lambda o: o.contact.phone if o.contact else None)


def label_contact(
    contact: Contact,
    label: MissiveLabel,
    *,
    applied_at: datetime | None = None,
    first_applied_at: datetime | None = None,
    removed: bool = False,
) -> MissiveConversationLabel:
    """`label` on a conversation of `contact` (its first one, made when it has none), last
    applied at `applied_at` (default now); `removed=True` as after someone took it off."""
    conversation = db.session.scalar(
        sa.select(MissiveConversation)
        .where(MissiveConversation.contact_id == contact.id)
        .order_by(MissiveConversation.id)
        .limit(1)
    ) or MissiveConversationFactory(contact=contact)
    applied_at = applied_at or utcnow()
    link = MissiveConversationLabel(
        conversation_id=conversation.id,
        label_id=label.id,
        first_applied_at=first_applied_at or applied_at,
        last_applied_at=applied_at,
        removed=removed,
        removed_at=utcnow() if removed else None,
    )
    db.session.add(link)
    db.session.flush()
    return link


def upload_rows(
    upload: Upload, rows: list[tuple[Contact, dict[str, str]]], *, message_column: str = "message"
) -> list[UploadContact]:
    """An imported campaign upload's rows as the import leaves them: each contact with its
    row's `data` (every non-empty column but the phone) and the `message` column's value."""
    made = []
    for row_number, (contact, data) in enumerate(rows, start=2):  # row 1 is the header
        made.append(
            UploadContact(
                upload_id=upload.id,
                contact_id=contact.id,
                row_number=row_number,
                message=data.get(message_column),
                data={k: v for k, v in data.items() if v},
            )
        )
    db.session.add_all(made)
    db.session.flush()
    return made
