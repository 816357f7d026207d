"""Uploads: CSV files (contact imports, campaign lists, personalized campaigns) and their rows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from app.extensions import db
from app.models.types import JSONType, TimestampMixin, UTCDateTime, str_enum

if TYPE_CHECKING:
    from app.models.contact import Contact
    from app.models.user import User


class UploadPurpose(enum.StrEnum):
    CONTACT_IMPORT = "contact_import"
    CAMPAIGN_LIST = "campaign_list"
    PERSONALIZED = "personalized"


class UploadStatus(enum.StrEnum):
    PENDING = "pending"
    VALIDATING = "validating"
    VALIDATED = "validated"  # summary shown, waiting for the admin to import
    IMPORTING = "importing"
    DONE = "done"
    FAILED = "failed"


class Upload(TimestampMixin, db.Model):
    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    purpose: Mapped[UploadPurpose] = mapped_column(
        str_enum(UploadPurpose, "upload_purpose"), default=UploadPurpose.CONTACT_IMPORT
    )
    status: Mapped[UploadStatus] = mapped_column(
        str_enum(UploadStatus, "upload_status"), default=UploadStatus.PENDING
    )
    # The file itself lives in the database: web and worker may run on different machines.
    content: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    size_bytes: Mapped[int] = mapped_column(default=0)
    progress: Mapped[int] = mapped_column(default=0)  # rows processed in the current phase
    total_rows: Mapped[int] = mapped_column(default=0)
    valid_rows: Mapped[int] = mapped_column(default=0)
    invalid_rows: Mapped[int] = mapped_column(default=0)
    duplicate_rows: Mapped[int] = mapped_column(default=0)
    unsubscribed_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    phone_column: Mapped[str | None] = mapped_column(sa.String(120))
    errors: Mapped[list[dict[str, Any]]] = deferred(mapped_column(JSONType, default=list))
    # The rows that passed validation, normalised (PostgreSQL COPY text format), kept until the
    # import has run so it never parses or validates the file a second time.
    staged_rows: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    uploaded_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<Upload {self.id} {self.filename} {self.status}>"


class UploadContact(db.Model):
    """A contact found in an upload: membership for `in_upload` and lists, plus per-row data."""

    __tablename__ = "upload_contacts"
    __table_args__ = (sa.Index("ix_upload_contacts_contact_id", "contact_id"),)

    upload_id: Mapped[int] = mapped_column(
        sa.ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    row_number: Mapped[int] = mapped_column()
    message: Mapped[str | None] = mapped_column(sa.Text)  # personalized campaigns
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    contact: Mapped[Contact] = relationship()
