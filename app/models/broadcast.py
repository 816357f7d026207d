"""Broadcasts: the versioned weekly schedule, the broadcasts themselves and their segment mix."""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import JSONType, TimestampMixin, UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from app.models.segment import Segment
    from app.models.user import User

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ScheduleVersion(db.Model):
    """One saved version of the weekly cadence; the newest row is the active one."""

    __tablename__ = "schedule_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    monday: Mapped[time | None] = mapped_column(sa.Time)
    tuesday: Mapped[time | None] = mapped_column(sa.Time)
    wednesday: Mapped[time | None] = mapped_column(sa.Time)
    thursday: Mapped[time | None] = mapped_column(sa.Time)
    friday: Mapped[time | None] = mapped_column(sa.Time)
    saturday: Mapped[time | None] = mapped_column(sa.Time)
    sunday: Mapped[time | None] = mapped_column(sa.Time)
    default_batch_size: Mapped[int] = mapped_column(default=1000)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    created_by: Mapped[User | None] = relationship()

    def times(self) -> dict[str, time | None]:
        return {day: getattr(self, day) for day in WEEKDAYS}


class BroadcastStatus(enum.StrEnum):
    UPCOMING = "upcoming"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"


class Broadcast(TimestampMixin, db.Model):
    __tablename__ = "broadcasts"
    __table_args__ = (
        # Exactly one upcoming broadcast at a time, enforced by the database (SPEC 2).
        sa.Index(
            "uq_broadcasts_one_upcoming",
            "status",
            unique=True,
            postgresql_where=sa.text("status = 'upcoming'"),
            sqlite_where=sa.text("status = 'upcoming'"),
        ),
        sa.Index("ix_broadcasts_status_started_at", "status", "started_at"),
        sa.CheckConstraint("batch_size > 0", name="batch_size_positive"),
        sa.CheckConstraint("delay_seconds >= 0", name="delay_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    first_message: Mapped[str] = mapped_column(sa.Text)
    second_message: Mapped[str | None] = mapped_column(sa.Text)
    original_first_message: Mapped[str | None] = mapped_column(sa.Text)
    original_second_message: Mapped[str | None] = mapped_column(sa.Text)
    delay_seconds: Mapped[int] = mapped_column(default=600)
    batch_size: Mapped[int] = mapped_column(default=1000)  # the predecessor's `no_users`
    run_at_override: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[BroadcastStatus] = mapped_column(
        str_enum(BroadcastStatus, "broadcast_status"), default=BroadcastStatus.UPCOMING
    )
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipient_count: Mapped[int | None] = mapped_column()
    # SPEC 8 figures, kept up to date by the tick and the drain job (app/sends/stats.py).
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    stats_version: Mapped[int | None] = mapped_column(sa.SmallInteger)
    stats_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    started_by: Mapped[User | None] = relationship(foreign_keys=[started_by_id])
    cancelled_by: Mapped[User | None] = relationship(foreign_keys=[cancelled_by_id])
    segment_links: Mapped[list[BroadcastSegment]] = relationship(
        back_populates="broadcast",
        cascade="all, delete-orphan",
        order_by="BroadcastSegment.position",
    )

    def __repr__(self) -> str:
        return f"<Broadcast {self.id} {self.status}>"


class BroadcastSegment(db.Model):
    """A segment's share of a broadcast: `ratio` percent of the batch; the filler tops it up."""

    __tablename__ = "broadcast_segments"
    __table_args__ = (
        sa.UniqueConstraint("broadcast_id", "segment_id"),
        sa.Index(
            "uq_broadcast_segments_one_filler",
            "broadcast_id",
            unique=True,
            postgresql_where=sa.text("is_filler"),
            sqlite_where=sa.text("is_filler"),
        ),
        sa.CheckConstraint("ratio >= 0 AND ratio <= 100", name="ratio_percent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(sa.ForeignKey("broadcasts.id", ondelete="CASCADE"))
    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id", ondelete="RESTRICT"))
    ratio: Mapped[int] = mapped_column(default=0)
    is_filler: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)  # the stable order of segments (SPEC 4.2)

    broadcast: Mapped[Broadcast] = relationship(back_populates="segment_links")
    segment: Mapped[Segment] = relationship()
