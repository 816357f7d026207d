"""The daily maintenance jobs: retention, and excluding numbers that cannot be reached."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.jobs.maintenance import apply_retention
from app.jobs.schedule import PERIODIC_JOBS
from app.models import JobOutcome, JobRun, WebhookEvent, utcnow


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_retention_deletes_old_webhook_logs_and_job_runs_and_keeps_the_recent_ones(app):
    now = utcnow()
    for age in (31, 29, 0):
        db.session.add(WebhookEvent(source="twilio_inbound", received_at=now - timedelta(days=age)))
        db.session.add(
            JobRun(name="tick", started_at=now - timedelta(days=age), outcome=JobOutcome.SUCCESS)
        )
    db.session.commit()

    assert apply_retention() == {"webhook_events_deleted": 1, "job_runs_deleted": 1}

    assert _count(WebhookEvent) == 2
    ages = sorted(
        (now - r.started_at).days
        for r in db.session.scalars(sa.select(JobRun).where(JobRun.name == "tick"))
    )
    assert ages == [0, 29]
    run = db.session.scalars(sa.select(JobRun).where(JobRun.name == "retention")).one()
    assert run.outcome == JobOutcome.SUCCESS
    assert run.counts == {"webhook_events_deleted": 1, "job_runs_deleted": 1}


def test_retention_run_twice_deletes_nothing_the_second_time_and_keeps_its_own_runs(app):
    db.session.add(WebhookEvent(source="twilio_status", received_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    apply_retention()
    assert apply_retention() == {"webhook_events_deleted": 0, "job_runs_deleted": 0}
    runs = db.session.scalars(sa.select(JobRun).where(JobRun.name == "retention")).all()
    assert [r.outcome for r in runs] == [JobOutcome.SUCCESS, JobOutcome.SUCCESS]


def test_retention_never_deletes_the_run_that_is_running_it(app):
    # With a retention of zero days every row is older than the cutoff, this run's own too.
    db.session.add(JobRun(name="tick", outcome=JobOutcome.SUCCESS))
    db.session.commit()
    app.config["RETENTION_DAYS"], days = 0, app.config["RETENTION_DAYS"]
    try:
        counts = apply_retention()
    finally:
        app.config["RETENTION_DAYS"] = days
    assert counts["job_runs_deleted"] == 1
    run = db.session.scalars(sa.select(JobRun)).one()
    assert (run.name, run.outcome) == ("retention", JobOutcome.SUCCESS)
    assert run.counts == counts


def test_retention_is_one_daily_periodic_job_on_the_maintenance_queue():
    retention = [j for j in PERIODIC_JOBS if "retention" in j.id]
    assert [(j.id, j.func, j.queue) for j in retention] == [
        ("retention", "app.jobs.maintenance.apply_retention", "maintenance")
    ]
