"""Campaigns: one-off sends to segments/labels, an uploaded list, or personalized CSV rows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import JSONType, TimestampMixin, UTCDateTime, str_enum

if TYPE_CHECKING:
    from app.models.upload import Upload
    from app.models.user import User


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"


class CampaignTarget(enum.StrEnum):
    SEGMENTS = "segments"  # include/exclude rules over segments and labels
    UPLOADED_LIST = "uploaded_list"  # a CSV of phone numbers
    PERSONALIZED = "personalized"  # a CSV with a phone column and a message or merge fields


def empty_targeting() -> dict[str, Any]:
    return {"include": [], "exclude": []}


class Campaign(TimestampMixin, db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        sa.Index("ix_campaigns_status_run_at", "status", "run_at"),
        sa.CheckConstraint("delay_seconds >= 0", name="delay_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    first_message: Mapped[str] = mapped_column(sa.Text)
    second_message: Mapped[str | None] = mapped_column(sa.Text)
    delay_seconds: Mapped[int] = mapped_column(default=600)
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[CampaignStatus] = mapped_column(
        str_enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    target_kind: Mapped[CampaignTarget] = mapped_column(
        str_enum(CampaignTarget, "campaign_target"), default=CampaignTarget.SEGMENTS
    )
    targeting: Mapped[dict[str, Any]] = mapped_column(JSONType, default=empty_targeting)
    upload_id: Mapped[int | None] = mapped_column(sa.ForeignKey("uploads.id", ondelete="RESTRICT"))
    message_column: Mapped[str | None] = mapped_column(sa.String(120))  # personalized campaigns
    missive_label_name: Mapped[str | None] = mapped_column(sa.String(200))
    missive_label_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    estimated_recipients: Mapped[int | None] = mapped_column()
    actual_recipients: Mapped[int | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the campaign did not run as planned (a run time missed beyond the catch-up window, a
    # cancel, a target that stopped working): shown on its page, never silent.
    status_note: Mapped[str | None] = mapped_column(sa.Text)
    # The Missive label: None (no label asked), "pending" (a job finds or creates it),
    # "ready" (missive_label_ids holds it) or "failed" (label_error says why; retried).
    label_state: Mapped[str | None] = mapped_column(sa.String(20))
    label_error: Mapped[str | None] = mapped_column(sa.Text)
    label_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # SPEC 8 figures, kept up to date by the tick and the drain job (app/sends/stats.py).
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    stats_version: Mapped[int | None] = mapped_column(sa.SmallInteger)
    stats_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    started_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    cancelled_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    upload: Mapped[Upload | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    started_by: Mapped[User | None] = relationship(foreign_keys=[started_by_id])
    cancelled_by: Mapped[User | None] = relationship(foreign_keys=[cancelled_by_id])

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.status}>"
