"""Outbound messages (the unit of sending, status and statistics) and inbound messages."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import BigId, TimestampMixin, UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from app.models.broadcast import Broadcast
    from app.models.campaign import Campaign
    from app.models.contact import Contact
    from app.models.segment import Segment


class Step(enum.StrEnum):
    FIRST = "first"
    SECOND = "second"


class MessageStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time: a follow-up, or held by quiet hours
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker
    SENT = "sent"  # accepted by the provider
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    RETRYING = "retrying"
    UNKNOWN = "unknown"  # the provider may or may not have it (SPEC 6.4)
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


# The status sets, defined once and used everywhere (engine, statistics, results, pages).
# Waiting to be handed to the provider: what an opt-out, a reply or a cancelled send cancels.
PENDING_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.RETRYING)
# Claimed by a worker, or the provider may or may not have it: recovery's business.
IN_FLIGHT_STATUSES = (MessageStatus.SENDING, MessageStatus.UNKNOWN)
# Not yet done: a send with any of these left is still sending (an `unknown` message is
# listed under Needs attention and does not hold the send open).
UNFINISHED_STATUSES = PENDING_STATUSES + (MessageStatus.SENDING,)
# The provider accepted it (a `failed` message counts too when it carries a provider id: the
# carrier failed it after acceptance).
ACCEPTED_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)
# What segments count as "received": accepted, and no carrier said it failed.
RECEIVED_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED)
# Failed (before or after acceptance) or undelivered: with delivered, what has a final status.
FAILED_STATUSES = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
# Nothing more will happen to it: delivered, failed for good, or never to be sent.
FINAL_STATUSES = (
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
    MessageStatus.CANCELLED,
    MessageStatus.SKIPPED,
)
# "Did not get it": the recipients filter and the first question of the CSV of outcomes.
PROBLEM_STATUSES = (
    MessageStatus.FAILED,
    MessageStatus.UNDELIVERED,
    MessageStatus.CANCELLED,
    MessageStatus.SKIPPED,
    MessageStatus.UNKNOWN,
)


def _partial_index(name: str, columns: tuple[str, ...], where: str, unique: bool = False):
    return sa.Index(
        name,
        *columns,
        unique=unique,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


POSSIBLE_OPT_OUT = "possible_opt_out"  # InboundMessage.review: a person decides


class OutboundMessage(TimestampMixin, db.Model):
    """One row per (send, contact, step), where the send is a broadcast or a campaign."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        sa.CheckConstraint("(broadcast_id IS NULL) <> (campaign_id IS NULL)", name="one_send"),
        sa.UniqueConstraint("broadcast_id", "contact_id", "step"),
        # Indexes that most rows never need are partial: starting a 100,000-recipient broadcast
        # then writes 6 index entries per row instead of 12 (bench.start_broadcast).
        _partial_index(
            "uq_outbound_messages_campaign_id_contact_id_step",
            ("campaign_id", "contact_id", "step"),
            "campaign_id IS NOT NULL",
            unique=True,
        ),
        _partial_index(
            "uq_outbound_messages_provider_sid",
            ("provider_sid",),
            "provider_sid IS NOT NULL",
            unique=True,
        ),
        _partial_index(
            "uq_outbound_messages_twilio_sid",
            ("twilio_sid",),
            "twilio_sid IS NOT NULL",
            unique=True,
        ),
        # Statistics and progress: counts by status per send.
        sa.Index("ix_outbound_messages_broadcast_id_status", "broadcast_id", "status"),
        _partial_index(
            "ix_outbound_messages_campaign_id_status",
            ("campaign_id", "status"),
            "campaign_id IS NOT NULL",
        ),
        # The claim (oldest queued first) and the tick: due follow-ups, due retries, stale claims.
        _partial_index("ix_outbound_messages_queued", ("id",), "status = 'queued'"),
        _partial_index(
            "ix_outbound_messages_scheduled_for", ("scheduled_for",), "status = 'scheduled'"
        ),
        _partial_index(
            "ix_outbound_messages_next_attempt_at", ("next_attempt_at",), "status = 'retrying'"
        ),
        _partial_index(
            "ix_outbound_messages_claimed_at", ("claimed_at",), "status IN ('sending', 'unknown')"
        ),
        # Messages that went out (the overview's "sent in the last 24 h").
        _partial_index("ix_outbound_messages_sent_at", ("sent_at",), "sent_at IS NOT NULL"),
        # Contact timeline, reply linking and undeliverable detection.
        sa.Index("ix_outbound_messages_contact_id_created_at", "contact_id", "created_at"),
        sa.Index("ix_outbound_messages_segment_id", "segment_id"),
        _partial_index(
            "ix_outbound_messages_missive_conversation_id",
            ("missive_conversation_id",),
            "missive_conversation_id IS NOT NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys to the send or the segment: starting a broadcast inserts 100,000 rows
    # that all point at the same broadcast and a few segments, and PostgreSQL's per-row key
    # checks on those few rows cost more than the insert itself (bench.start_broadcast). The
    # engine writes these ids inside the transaction that holds the send's row; sends are never
    # deleted (they are cancelled), and a deleted segment leaves a harmless stale id.
    broadcast_id: Mapped[int | None] = mapped_column()
    campaign_id: Mapped[int | None] = mapped_column()
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    step: Mapped[Step] = mapped_column(str_enum(Step, "message_step"), default=Step.FIRST)
    body: Mapped[str] = mapped_column(sa.Text)
    segment_id: Mapped[int | None] = mapped_column()  # which segment chose it (no FK, above)
    status: Mapped[MessageStatus] = mapped_column(
        str_enum(MessageStatus, "message_status"), default=MessageStatus.QUEUED
    )
    transport: Mapped[str | None] = mapped_column(sa.String(20))
    provider_sid: Mapped[str | None] = mapped_column(sa.String(64))
    missive_draft_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Sent through Missive: the Twilio SID status reconciliation found in Twilio's list (our
    # `provider_sid` is then Missive's id). Twilio-sent messages have theirs in `provider_sid`.
    twilio_sid: Mapped[str | None] = mapped_column(sa.String(64))
    missive_conversation_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Provider statuses are stored as they come, whatever new values the provider invents.
    provider_status: Mapped[str | None] = mapped_column(sa.String(40))
    error_code: Mapped[str | None] = mapped_column(sa.String(20))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sms_segments: Mapped[int] = mapped_column(default=1)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(200))

    broadcast: Mapped[Broadcast | None] = relationship(
        primaryjoin="foreign(OutboundMessage.broadcast_id) == Broadcast.id"
    )
    campaign: Mapped[Campaign | None] = relationship(
        primaryjoin="foreign(OutboundMessage.campaign_id) == Campaign.id"
    )
    contact: Mapped[Contact] = relationship(back_populates="outbound_messages")
    segment: Mapped[Segment | None] = relationship(
        primaryjoin="foreign(OutboundMessage.segment_id) == Segment.id"
    )

    def __repr__(self) -> str:
        return f"<OutboundMessage {self.id} {self.step} {self.status}>"


class InboundMessage(db.Model):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        sa.UniqueConstraint("provider_id"),
        sa.Index("ix_inbound_messages_contact_id_received_at", "contact_id", "received_at"),
        sa.Index("ix_inbound_messages_reply_to_id", "reply_to_id"),
        sa.Index("ix_inbound_messages_phone_received_at", "phone", "received_at"),
        # Replies that read like an opt-out, waiting for a person (Needs attention).
        _partial_index(
            "ix_inbound_messages_review_pending",
            ("received_at",),
            "review IS NOT NULL AND review_outcome IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Twilio MessageSid or Missive message id: a webhook delivered twice is stored once.
    provider_id: Mapped[str] = mapped_column(sa.String(64))
    provider: Mapped[str] = mapped_column(sa.String(20))
    phone: Mapped[str] = mapped_column(sa.String(20))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="SET NULL")
    )
    reply_to_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("outbound_messages.id", ondelete="SET NULL")
    )
    keyword: Mapped[Keyword | None] = mapped_column(str_enum(Keyword, "inbound_keyword"))
    missive_conversation_id: Mapped[str | None] = mapped_column(sa.String(64))
    # A reply that reads like an opt-out ("please stop texting me") is listed for a person to
    # decide: `review` says why it is listed, `review_outcome` what they decided.
    review: Mapped[str | None] = mapped_column(sa.String(20))
    review_outcome: Mapped[str | None] = mapped_column(sa.String(20))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact: Mapped[Contact | None] = relationship(back_populates="inbound_messages")
    reply_to: Mapped[OutboundMessage | None] = relationship()

    def __repr__(self) -> str:
        return f"<InboundMessage {self.id} {self.phone}>"
