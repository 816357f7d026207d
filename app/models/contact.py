"""Contacts: one phone number and what we know about it, including opt-out and exclusion."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import JSONType, TimestampMixin, UTCDateTime, str_enum

if TYPE_CHECKING:
    from app.models.message import InboundMessage, OutboundMessage
    from app.models.missive import MissiveConversation


class ContactSource(enum.StrEnum):
    CONVERSATION = "conversation"  # texted in, or synced from Missive: may receive broadcasts
    UPLOAD = "upload"  # created only by a campaign CSV upload: never enters broadcasts


class ExcludeReason(enum.StrEnum):
    MANUAL = "manual"
    UNDELIVERABLE = "undeliverable"
    INVALID_NUMBER = "invalid number"


class Contact(TimestampMixin, db.Model):
    __tablename__ = "contacts"
    __table_args__ = (
        # The eligibility filter of every send (SPEC 3.2) reads these three columns.
        sa.Index("ix_contacts_eligibility", "unsubscribed", "excluded", "source"),
        sa.Index("ix_contacts_zip_code", "zip_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20), unique=True)  # E.164
    name: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    zip_code: Mapped[str | None] = mapped_column(sa.String(12))
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    unsubscribed: Mapped[bool] = mapped_column(default=False)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribe_reason: Mapped[str | None] = mapped_column(sa.String(200))
    excluded: Mapped[bool] = mapped_column(default=False)
    excluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exclude_reason: Mapped[ExcludeReason | None] = mapped_column(
        str_enum(ExcludeReason, "exclude_reason")
    )
    source: Mapped[ContactSource] = mapped_column(
        str_enum(ContactSource, "contact_source"), default=ContactSource.CONVERSATION
    )

    outbound_messages: Mapped[list[OutboundMessage]] = relationship(
        back_populates="contact", lazy="raise_on_sql"
    )
    inbound_messages: Mapped[list[InboundMessage]] = relationship(
        back_populates="contact", lazy="raise_on_sql"
    )
    conversations: Mapped[list[MissiveConversation]] = relationship(
        back_populates="contact", lazy="raise_on_sql"
    )

    @property
    def is_eligible(self) -> bool:
        return not (self.unsubscribed or self.excluded)

    def __repr__(self) -> str:
        return f"<Contact {self.phone}>"
