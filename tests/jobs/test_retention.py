"""The webhook log keeps RETENTION_DAYS of payloads; the daily job deletes the rest, twice safely."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.jobs.inbound import prune_webhook_events
from app.models import JobRun, WebhookEvent, utcnow


def test_webhook_events_older_than_the_retention_are_deleted_and_the_run_recorded(app):
    now = utcnow()
    for age in (31, 29, 0):
        db.session.add(WebhookEvent(source="twilio_inbound", received_at=now - timedelta(days=age)))
    db.session.commit()
    assert prune_webhook_events() == {"deleted": 1}
    assert prune_webhook_events() == {"deleted": 0}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 2
    runs = db.session.scalars(sa.select(JobRun).where(JobRun.name == "webhook retention")).all()
    assert [r.outcome for r in runs] == ["success", "success"]
