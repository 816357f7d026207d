"""The daily maintenance jobs: retention, and excluding numbers that cannot be reached."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.jobs.maintenance import apply_retention, exclude_undeliverable
from app.jobs.schedule import PERIODIC_JOBS
from app.models import (
    ApiIdempotencyKey,
    AuditLog,
    ExcludeReason,
    JobOutcome,
    JobRun,
    Keyword,
    MessageStatus,
    WebhookEvent,
    utcnow,
)
from tests.factories import ContactFactory, InboundMessageFactory, OutboundMessageFactory


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_retention_deletes_old_webhook_logs_and_job_runs_and_keeps_the_recent_ones(app):
    now = utcnow()
    for age in (31, 29, 0):
        db.session.add(WebhookEvent(source="twilio_inbound", received_at=now - timedelta(days=age)))
        db.session.add(
            JobRun(name="tick", started_at=now - timedelta(days=age), outcome=JobOutcome.SUCCESS)
        )
    for hours, key in ((25, "old"), (23, "recent")):  # the API's keys are kept a day
        db.session.add(
            ApiIdempotencyKey(
                user_id=1, key=key, fingerprint="f", created_at=now - timedelta(hours=hours)
            )
        )
    db.session.commit()

    assert apply_retention() == {
        "webhook_events_deleted": 1,
        "job_runs_deleted": 1,
        "idempotency_keys_deleted": 1,
    }

    assert _count(WebhookEvent) == 2
    assert list(db.session.scalars(sa.select(ApiIdempotencyKey.key))) == ["recent"]
    ages = sorted(
        (now - r.started_at).days
        for r in db.session.scalars(sa.select(JobRun).where(JobRun.name == "tick"))
    )
    assert ages == [0, 29]
    run = db.session.scalars(sa.select(JobRun).where(JobRun.name == "retention")).one()
    assert run.outcome == JobOutcome.SUCCESS
    assert run.counts == {
        "webhook_events_deleted": 1,
        "job_runs_deleted": 1,
        "idempotency_keys_deleted": 1,
    }


def test_retention_run_twice_deletes_nothing_the_second_time_and_keeps_its_own_runs(app):
    db.session.add(WebhookEvent(source="twilio_status", received_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    apply_retention()
    assert apply_retention() == {
        "webhook_events_deleted": 0,
        "job_runs_deleted": 0,
        "idempotency_keys_deleted": 0,
    }
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


def _messages(contact, *statuses, days_ago: float = 1):
    """Outbound messages to `contact`, oldest first, an hour apart, the newest `days_ago` old."""
    newest = utcnow() - timedelta(days=days_ago)
    made = []
    for i, status in enumerate(statuses):
        at = newest - timedelta(hours=len(statuses) - 1 - i)
        trait = {"failed": "failed", "undelivered": "undelivered", "delivered": "delivered"}
        made.append(
            OutboundMessageFactory(
                contact=contact, created_at=at, **{trait.get(status, "sent"): True}
            )
        )
    db.session.commit()
    return made


def _excluded_audits(contact) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditLog)
        .where(AuditLog.action == "contact.excluded", AuditLog.object_id == str(contact.id))
    )


def test_a_contact_whose_last_three_messages_failed_is_excluded_audited_and_its_pending_cancelled(
    app,
):
    contact = ContactFactory()
    _messages(contact, "delivered", "failed", "undelivered", "failed")
    pending = OutboundMessageFactory(contact=contact, status=MessageStatus.QUEUED)
    db.session.commit()

    assert exclude_undeliverable() == {"found": 1, "excluded": 1}

    db.session.refresh(contact)
    db.session.refresh(pending)
    assert (contact.excluded, contact.exclude_reason) == (True, ExcludeReason.UNDELIVERABLE)
    assert pending.status == MessageStatus.CANCELLED
    assert _excluded_audits(contact) == 1
    run = db.session.scalars(sa.select(JobRun).where(JobRun.name == "undeliverable numbers")).one()
    assert (run.outcome, run.counts) == (JobOutcome.SUCCESS, {"found": 1, "excluded": 1})


def test_temporary_error_codes_count_toward_the_three(app):
    contact = ContactFactory()
    for message, code in zip(
        _messages(contact, "undelivered", "undelivered", "undelivered"),
        ("30003", "30008", "30003"),
        strict=True,
    ):
        message.error_code = code
    db.session.commit()
    assert exclude_undeliverable()["excluded"] == 1


def test_two_failures_do_not_exclude(app):
    contact = ContactFactory()
    _messages(contact, "failed", "undelivered")
    assert exclude_undeliverable() == {"found": 0, "excluded": 0}
    db.session.refresh(contact)
    assert contact.excluded is False


def test_three_failures_with_a_reply_in_between_do_not_exclude(app):
    contact = ContactFactory()
    first, *_ = _messages(contact, "failed", "undelivered", "failed")
    InboundMessageFactory(contact=contact, received_at=first.created_at + timedelta(minutes=30))
    db.session.commit()
    assert exclude_undeliverable()["excluded"] == 0
    db.session.refresh(contact)
    assert contact.excluded is False


def test_a_keyword_is_not_a_reply(app):
    contact = ContactFactory()
    _messages(contact, "failed", "failed", "failed")
    InboundMessageFactory(contact=contact, keyword=Keyword.HELP, body="HELP")
    db.session.commit()
    assert exclude_undeliverable()["excluded"] == 1


def test_failures_older_than_thirty_days_do_not_exclude(app):
    contact = ContactFactory()
    _messages(contact, "failed", "failed", "failed", days_ago=31)
    assert exclude_undeliverable()["excluded"] == 0
    db.session.refresh(contact)
    assert contact.excluded is False


def test_a_sent_or_delivered_message_among_the_last_three_does_not_exclude(app):
    sent_one, delivered_one = ContactFactory(), ContactFactory()
    _messages(sent_one, "failed", "failed", "failed", "sent", "failed")
    _messages(delivered_one, "failed", "delivered", "failed", "failed")
    assert exclude_undeliverable()["excluded"] == 0


def test_undeliverable_run_twice_excludes_once(app):
    contact = ContactFactory()
    _messages(contact, "failed", "failed", "failed")
    assert exclude_undeliverable()["excluded"] == 1
    assert exclude_undeliverable() == {"found": 0, "excluded": 0}
    assert _excluded_audits(contact) == 1


def test_undeliverable_is_a_daily_periodic_job_on_the_maintenance_queue():
    job = next(j for j in PERIODIC_JOBS if j.id == "undeliverable")
    assert (job.func, job.queue) == ("app.jobs.maintenance.exclude_undeliverable", "maintenance")
    assert job.cron.endswith("* * *") and not job.cron.startswith("*")
