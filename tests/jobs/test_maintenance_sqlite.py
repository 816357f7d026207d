"""The daily maintenance jobs on SQLite (the development default `make dev` uses): each one
runs to its outcome there, with the Missive transport's notes and archives too."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.jobs.maintenance import apply_retention, archive_double_failures, exclude_undeliverable
from app.models import (
    Contact,
    ExcludeReason,
    JobOutcome,
    JobRun,
    MissiveConversation,
    WebhookEvent,
    utcnow,
)
from tests.factories import ContactFactory, OutboundMessageFactory
from tests.fakes.missive import DEFAULT_ORGANIZATION, FakeMissive
from tests.support import make_test_config, run_flask, test_env

pytestmark = pytest.mark.slow


def _messages(contact, *traits, conversation: str) -> None:
    newest = utcnow() - timedelta(days=1)
    for i, trait in enumerate(traits):
        OutboundMessageFactory(
            contact=contact,
            created_at=newest - timedelta(hours=len(traits) - i),
            transport="missive",
            missive_conversation_id=conversation,
            **{trait: True},
        )


def test_the_maintenance_jobs_run_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
    with FakeMissive(seed=5) as fake:
        app = create_app(
            make_test_config(
                database_url=url,
                TRANSPORT="missive",
                MISSIVE_API_TOKEN=fake.token,
                MISSIVE_API_BASE_URL=fake.url + "/v1",
                MISSIVE_FROM_NUMBER="+13135558888",
                MISSIVE_ORGANIZATION_ID=DEFAULT_ORGANIZATION,
                MISSIVE_UNDELIVERABLE_LABEL_ID="label-undeliverable",
                MISSIVE_ARCHIVE_LABEL_ID="label-archive",
            )
        )
        with app.app_context():
            failing, two_failures = ContactFactory(), ContactFactory()
            _messages(failing, "failed", "undelivered", "failed", conversation="conv-1")
            _messages(two_failures, "sent", "failed", "undelivered", conversation="conv-2")
            db.session.add(
                WebhookEvent(source="twilio_status", received_at=utcnow() - timedelta(days=400))
            )
            db.session.commit()

            counts = exclude_undeliverable()
            assert counts == {"found": 1, "excluded": 1, "posts_posted": 1, "posts_failed": 0}
            excluded = db.session.scalars(sa.select(Contact.id).where(Contact.excluded)).all()
            assert excluded == [failing.id]
            assert db.session.get(Contact, failing.id).exclude_reason == ExcludeReason.UNDELIVERABLE
            assert exclude_undeliverable()["excluded"] == 0

            # Both conversations' last two broadcast messages failed: each archived once.
            assert archive_double_failures()["archived_posted"] == 2
            assert archive_double_failures()["conversations_found"] == 0
            archived = db.session.scalars(
                sa.select(MissiveConversation.missive_id).where(
                    MissiveConversation.double_failure_archived_at.is_not(None)
                )
            ).all()
            assert sorted(archived) == ["conv-1", "conv-2"]

            assert apply_retention()["webhook_events_deleted"] == 1

            outcomes = {
                (name, outcome)
                for name, outcome in db.session.execute(sa.select(JobRun.name, JobRun.outcome))
            }
        assert outcomes == {
            ("undeliverable numbers", JobOutcome.SUCCESS),
            ("archive double failures", JobOutcome.SUCCESS),
            ("retention", JobOutcome.SUCCESS),
        }
        posts = fake.posts()
    assert sorted(post["conversation"] for post in posts) == ["conv-1", "conv-1", "conv-2"]
