"""Operational records: job runs, the audit log, and settings editable from the dashboard."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import BigId, JSONType, UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from app.models.user import User


class JobOutcome(enum.StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


class JobRun(db.Model):
    """One row per periodic or maintenance job run."""

    __tablename__ = "job_runs"
    __table_args__ = (sa.Index("ix_job_runs_name_started_at", "name", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[JobOutcome] = mapped_column(
        str_enum(JobOutcome, "job_outcome"), default=JobOutcome.RUNNING
    )
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # Who ran it, so a `running` row whose run died (worker SIGKILLed, out of memory) can be
    # told from a live one (app.jobs.runs.close_abandoned_runs): the RQ job and worker when a
    # worker ran it, and the process (`<boot id>/<PID namespace>/<pid>/<start time>`).
    rq_job_id: Mapped[str | None] = mapped_column(sa.String(200))
    worker_name: Mapped[str | None] = mapped_column(sa.String(200))
    process: Mapped[str | None] = mapped_column(sa.String(120))

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class AuditLog(db.Model):
    """Who did what to which object, when, from where."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_created_at", "created_at"),
        sa.Index("ix_audit_log_object_type_object_id", "object_type", "object_id"),
        sa.Index("ix_audit_log_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(sa.String(254), default="")  # email, or "system"/"webhook"
    action: Mapped[str] = mapped_column(sa.String(60))
    object_type: Mapped[str | None] = mapped_column(sa.String(40))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))

    user: Mapped[User | None] = relationship()


class WebhookEvent(db.Model):
    """The raw payload of one webhook call, kept RETENTION_DAYS for debugging and replays."""

    __tablename__ = "webhook_events"
    __table_args__ = (sa.Index("ix_webhook_events_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(40))  # twilio_inbound, twilio_status, missive...
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signature_ok: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[str] = mapped_column(sa.Text, default="")  # the raw body, as received
    outcome: Mapped[str | None] = mapped_column(sa.String(200))


class ApiToken(db.Model):
    """A per-user API token; only its hash is stored, and it can be revoked."""

    __tablename__ = "api_tokens"
    __table_args__ = (sa.Index("ix_api_tokens_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(120))
    token_hash: Mapped[str] = mapped_column(sa.String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The token's first characters (`bc_` and a few more), so a person recognises it in a list.
    prefix: Mapped[str] = mapped_column(sa.String(16), default="", server_default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(sa.String(45))

    user: Mapped[User] = relationship()

    def usable(self, now: datetime) -> bool:
        """Not revoked, not expired, and its owner still active."""
        if self.revoked_at is not None:
            return False
        if self.expires_at is not None and self.expires_at <= now:
            return False
        return self.user is not None and self.user.active


class ApiIdempotencyKey(db.Model):
    """The first answer to an API POST under its Idempotency-Key (per user), replayed to retries.

    No foreign key on purpose: the row is written and locked on a connection of its own while
    the request runs (app/api/idempotency.py)."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "key"),
        sa.Index("ix_api_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column()
    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # method, path and body, hashed
    status_code: Mapped[int | None] = mapped_column()
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Setting(db.Model):
    """An organisation setting changed from the dashboard (staff test numbers, quiet hours...)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
