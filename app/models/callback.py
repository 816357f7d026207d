"""Status callbacks accepted and not yet applied: the inbox the webhook writes one row to."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import BigId, UTCDateTime, utcnow


class StatusCallback(db.Model):
    """One provider status callback, stored by the webhook in a single insert and applied in
    bulk by a worker a moment later (`app/webhooks/inbox.py`). Applying it moves it to the
    webhook log with its outcome and deletes it here, so this table holds only what is still
    pending: a worker or Redis outage delays the statuses, the database never loses them."""

    __tablename__ = "status_callbacks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Our message id from the callback URL (`m`); no foreign key: a callback naming a message
    # we do not have is still logged, as "no change".
    message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    provider_sid: Mapped[str | None] = mapped_column(sa.String(64))
    provider_status: Mapped[str] = mapped_column(sa.String(40))
    error_code: Mapped[str | None] = mapped_column(sa.String(20))
    error_message: Mapped[str | None] = mapped_column(sa.String(500))
    payload: Mapped[str] = mapped_column(sa.Text, default="")  # the raw body, for the log
    # Not tried again before this: a callback by SID only whose message has no SID yet (the
    # worker has not recorded it), or whose message row was busy at the last pass.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
