"""Figures for the overview page, each one query (broadcast queries come from broadcasts.services)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Contact, ContactSource, JobRun, OutboundMessage, Segment
from app.sending.outbound import provider_has_it


@dataclass
class AudienceSummary:
    total: int
    broadcast_eligible: int
    unsubscribed: int
    excluded: int
    segments: int


def audience_summary() -> AudienceSummary:
    row = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(
                ~Contact.unsubscribed, ~Contact.excluded, Contact.source != ContactSource.UPLOAD
            ),
            sa.func.count().filter(Contact.unsubscribed),
            sa.func.count().filter(Contact.excluded),
        ).select_from(Contact)
    ).one()
    segments = db.session.scalar(sa.select(sa.func.count()).select_from(Segment)) or 0
    return AudienceSummary(row[0], row[1], row[2], row[3], segments)


def last_job_run(name: str) -> JobRun | None:
    return db.session.scalar(
        sa.select(JobRun).where(JobRun.name == name).order_by(JobRun.id.desc()).limit(1)
    )


def messages_sent_since(since: datetime) -> int:
    """Messages that went out (the provider accepted them) since `since`: not the ones still
    queued, held by quiet hours, cancelled or refused."""
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.sent_at >= since, provider_has_it())
        )
        or 0
    )
