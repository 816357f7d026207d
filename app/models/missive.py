"""The Missive mirror: conversations, shared labels and which conversation carries which label."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import TimestampMixin, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.contact import Contact


class MissiveConversation(TimestampMixin, db.Model):
    __tablename__ = "missive_conversations"
    __table_args__ = (sa.Index("ix_missive_conversations_contact_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    missive_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="SET NULL")
    )
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    web_url: Mapped[str | None] = mapped_column(sa.String(500))
    app_url: Mapped[str | None] = mapped_column(sa.String(500))
    closed: Mapped[bool] = mapped_column(default=False)
    # "Archive double failures" runs once per conversation: remember that it was done.
    double_failure_archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The undeliverable note (label, close) is posted once: set when claimed, cleared on failure.
    undeliverable_posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact | None] = relationship(back_populates="conversations")
    label_links: Mapped[list[MissiveConversationLabel]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", lazy="raise_on_sql"
    )


class MissiveLabel(TimestampMixin, db.Model):
    __tablename__ = "missive_labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    missive_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    parent_missive_id: Mapped[str | None] = mapped_column(sa.String(64))


class MissiveConversationLabel(db.Model):
    """A label on a conversation. Removed then applied again: active again, with a new last_applied_at."""

    __tablename__ = "missive_conversation_labels"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "label_id"),
        # Label conditions (has label, since) read the conversation from the index alone.
        sa.Index(
            "ix_missive_conversation_labels_label_lookup",
            "label_id",
            "removed",
            "last_applied_at",
            postgresql_include=["conversation_id"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("missive_conversations.id", ondelete="CASCADE")
    )
    label_id: Mapped[int] = mapped_column(sa.ForeignKey("missive_labels.id", ondelete="CASCADE"))
    first_applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed: Mapped[bool] = mapped_column(default=False)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    conversation: Mapped[MissiveConversation] = relationship(back_populates="label_links")
    label: Mapped[MissiveLabel] = relationship()
