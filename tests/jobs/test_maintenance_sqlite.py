"""The daily maintenance jobs on SQLite (the development default `make dev` uses): each one
runs to its outcome there, and the undeliverable query finds the same contacts as on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.jobs.maintenance import apply_retention, archive_double_failures, exclude_undeliverable
from app.models import Contact, ExcludeReason, JobOutcome, JobRun, WebhookEvent, utcnow
from tests.factories import ContactFactory, OutboundMessageFactory
from tests.support import make_test_config, run_flask, test_env

pytestmark = pytest.mark.slow


def test_the_maintenance_jobs_run_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
    app = create_app(make_test_config(database_url=url))
    with app.app_context():
        failing, two_failures = ContactFactory(), ContactFactory()
        newest = utcnow() - timedelta(days=1)
        for contact, traits in (
            (failing, ("failed", "undelivered", "failed")),
            (two_failures, ("sent", "failed", "undelivered")),
        ):
            for i, trait in enumerate(traits):
                OutboundMessageFactory(
                    contact=contact, created_at=newest - timedelta(hours=3 - i), **{trait: True}
                )
        db.session.add(
            WebhookEvent(source="twilio_status", received_at=utcnow() - timedelta(days=400))
        )
        db.session.commit()

        counts = exclude_undeliverable()
        assert (counts["found"], counts["excluded"]) == (1, 1)
        excluded = db.session.scalars(sa.select(Contact.id).where(Contact.excluded)).all()
        assert excluded == [failing.id]
        assert db.session.get(Contact, failing.id).exclude_reason == ExcludeReason.UNDELIVERABLE
        assert exclude_undeliverable()["excluded"] == 0

        assert apply_retention()["webhook_events_deleted"] == 1
        assert "skipped" in archive_double_failures()  # the simulator transport: says why

        outcomes = dict(db.session.execute(sa.select(JobRun.name, JobRun.outcome)).all())
        assert outcomes == {
            "undeliverable numbers": JobOutcome.SUCCESS,
            "retention": JobOutcome.SUCCESS,
            "archive double failures": JobOutcome.SKIPPED,
        }
