"""Maintenance posts to Missive: the undeliverable note and the double-failure archive, each once
per conversation, against the fake Missive API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError

from app.extensions import db
from app.jobs import maintenance, missive_upkeep
from app.jobs.maintenance import archive_double_failures, exclude_undeliverable
from app.jobs.schedule import PERIODIC_JOBS
from app.models import (
    ExcludeReason,
    JobOutcome,
    JobRun,
    MessageStatus,
    MissiveConversation,
    utcnow,
)
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
)
from tests.fakes.missive import DEFAULT_ORGANIZATION, FakeMissive

UNDELIVERABLE_LABEL = "label-undeliverable"
ARCHIVE_LABEL = "label-archive"


@pytest.fixture
def fake() -> Iterator[FakeMissive]:
    with FakeMissive(seed=3) as server:
        yield server


def missive_settings(fake: FakeMissive, **overrides) -> dict:
    return {
        "TRANSPORT": "missive",
        "MISSIVE_API_TOKEN": fake.token,
        "MISSIVE_API_BASE_URL": fake.url + "/v1",
        "MISSIVE_FROM_NUMBER": "+13135558888",
        "MISSIVE_ORGANIZATION_ID": DEFAULT_ORGANIZATION,
        "MISSIVE_UNDELIVERABLE_LABEL_ID": UNDELIVERABLE_LABEL,
        "MISSIVE_ARCHIVE_LABEL_ID": ARCHIVE_LABEL,
        **overrides,
    }


@pytest.fixture
def app(make_app, fake) -> Iterator[Flask]:
    app = make_app(**missive_settings(fake))
    with app.app_context():
        yield app


def _messages(contact, *statuses, conversation: str, days_ago: float = 1, **fields):
    """Outbound messages to `contact` through Missive, oldest first, an hour apart."""
    newest = utcnow() - timedelta(days=days_ago)
    made = []
    for i, status in enumerate(statuses):
        made.append(
            OutboundMessageFactory(
                contact=contact,
                created_at=newest - timedelta(hours=len(statuses) - 1 - i),
                transport="missive",
                missive_conversation_id=conversation,
                **{status: True},
                **fields,
            )
        )
    db.session.commit()
    return made


def _run(name: str) -> JobRun:
    return db.session.scalars(
        sa.select(JobRun).where(JobRun.name == name).order_by(JobRun.id.desc()).limit(1)
    ).one()


# -- the undeliverable note ------------------------------------------------------------------------
def test_an_excluded_undeliverable_number_gets_one_labelled_note_that_closes_its_conversation(
    app, fake
):
    contact = ContactFactory(phone="+13135550101")
    _messages(contact, "failed", "undelivered", "failed", conversation="conv-1")
    healthy = ContactFactory()
    _messages(healthy, "failed", "delivered", conversation="conv-2")

    counts = exclude_undeliverable()

    assert counts == {"found": 1, "excluded": 1, "posts_posted": 1, "posts_failed": 0}
    [post] = fake.posts()
    assert post["conversation"] == "conv-1" and post["close"] is True
    assert post["add_shared_labels"] == [UNDELIVERABLE_LABEL]
    assert "+13135550101" in post["text"] and "last 3 messages failed" in post["text"]
    mirror = db.session.scalar(
        sa.select(MissiveConversation).where(MissiveConversation.missive_id == "conv-1")
    )
    assert mirror.contact_id == contact.id and mirror.undeliverable_posted_at is not None
    assert _run("undeliverable numbers").counts == counts


def test_the_note_is_posted_once_however_often_the_job_runs(app, fake):
    contact = ContactFactory()
    _messages(contact, "failed", "failed", "failed", conversation="conv-1")
    exclude_undeliverable()
    again = exclude_undeliverable()
    assert again == {"found": 0, "excluded": 0, "posts_posted": 0, "posts_failed": 0}
    assert len(fake.posts()) == 1


def test_a_number_excluded_for_a_carrier_error_gets_the_note_with_that_reason(app, fake):
    contact = ContactFactory()
    [message] = _messages(contact, "undelivered", conversation="conv-9")
    from app.sending.contacts import exclude_contacts

    exclude_contacts(
        [contact.id], ExcludeReason.UNDELIVERABLE, f"carrier error 30005 on message {message.id}"
    )
    db.session.commit()

    assert exclude_undeliverable()["posts_posted"] == 1
    [post] = fake.posts()
    assert post["conversation"] == "conv-9" and "carrier error 30005" in post["text"]


def test_a_failed_note_is_counted_released_and_posted_by_the_next_run(app, fake):
    contact = ContactFactory()
    _messages(contact, "failed", "failed", "failed", conversation="conv-1")
    fake.configure(outage_status=503)

    counts = exclude_undeliverable()

    assert (counts["excluded"], counts["posts_posted"], counts["posts_failed"]) == (1, 0, 1)
    assert "conv-1" in counts["posts_last_error"]
    mirror = db.session.scalar(sa.select(MissiveConversation))
    assert mirror.undeliverable_posted_at is None

    fake.configure(outage_status=0)
    counts = exclude_undeliverable()
    assert (counts["excluded"], counts["posts_posted"]) == (0, 1)
    assert len(fake.posts()) == 1


def test_without_the_label_setting_the_number_is_excluded_and_the_run_says_why_no_note(
    make_app, fake
):
    app = make_app(**missive_settings(fake, MISSIVE_UNDELIVERABLE_LABEL_ID=""))
    with app.app_context():
        contact = ContactFactory()
        _messages(contact, "failed", "failed", "failed", conversation="conv-1")
        counts = exclude_undeliverable()
        assert counts["excluded"] == 1
        assert counts["posts_skipped"] == "MISSIVE_UNDELIVERABLE_LABEL_ID is not set"
    assert fake.posts() == []


def test_a_number_with_a_reply_is_neither_excluded_nor_noted(app, fake):
    contact = ContactFactory()
    _messages(contact, "failed", "failed", "failed", conversation="conv-1")
    InboundMessageFactory(contact=contact, phone=contact.phone, body="who is this?")
    db.session.commit()
    assert exclude_undeliverable()["excluded"] == 0
    assert fake.posts() == []


# -- double failures -------------------------------------------------------------------------------
def test_a_conversation_whose_last_two_broadcast_messages_failed_is_archived_once(app, fake):
    contact = ContactFactory(phone="+13135550123")
    _messages(contact, "delivered", "failed", "undelivered", conversation="conv-1")

    counts = archive_double_failures()

    assert counts == {"conversations_found": 1, "archived_posted": 1, "archived_failed": 0}
    [post] = fake.posts()
    assert post["conversation"] == "conv-1" and post["add_shared_labels"] == [ARCHIVE_LABEL]
    assert post["close"] is True and "+13135550123" in post["text"]
    assert _run("archive double failures").outcome == JobOutcome.SUCCESS

    assert archive_double_failures() == {
        "conversations_found": 0,
        "archived_posted": 0,
        "archived_failed": 0,
    }
    assert len(fake.posts()) == 1
    mirror = db.session.scalar(sa.select(MissiveConversation))
    assert mirror.double_failure_archived_at is not None
    # The number itself is left alone: archiving is not excluding.
    db.session.refresh(contact)
    assert not contact.excluded


@pytest.mark.parametrize(
    ("statuses", "days_ago"),
    [
        (("failed", "delivered"), 1),  # the last one went through
        (("failed",), 1),  # one failure is not two
        (("failed", "failed"), 8),  # both older than 7 days
    ],
)
def test_no_archive_unless_the_last_two_within_seven_days_failed(app, fake, statuses, days_ago):
    _messages(ContactFactory(), *statuses, conversation="conv-1", days_ago=days_ago)
    assert archive_double_failures()["conversations_found"] == 0
    assert fake.posts() == []


def test_campaign_messages_do_not_count_and_pending_ones_do_not_interrupt(app, fake):
    contact = ContactFactory()
    _messages(contact, "failed", conversation="conv-1", days_ago=2)
    # A campaign failure in between is not a broadcast message...
    _messages(contact, "failed", conversation="conv-1", days_ago=1.5, campaign=CampaignFactory())
    assert archive_double_failures()["conversations_found"] == 0
    # ...and a queued broadcast message has not been tried yet; the second broadcast failure
    # makes two.
    OutboundMessageFactory(
        contact=contact, missive_conversation_id="conv-1", status=MessageStatus.QUEUED
    )
    _messages(contact, "failed", conversation="conv-1", days_ago=1)
    assert archive_double_failures()["conversations_found"] == 1


def test_with_another_transport_the_archive_run_is_skipped_saying_why(make_app):
    app = make_app(TRANSPORT="twilio")
    with app.app_context():
        counts = archive_double_failures()
        run = _run("archive double failures")
    assert run.outcome == JobOutcome.SKIPPED
    assert counts["skipped"] == "posts to Missive need the missive transport (TRANSPORT=twilio)"


def test_archive_double_failures_is_a_daily_periodic_job_on_the_maintenance_queue():
    [job] = [j for j in PERIODIC_JOBS if j.id == "archive-double-failures"]
    assert (job.func, job.queue) == ("app.jobs.maintenance.archive_double_failures", "maintenance")


# -- progress while running, and a claim given back when the post never happened -----------------
def _running_counts() -> dict:
    """The counts the running job run publishes (what the System page's row shows live)."""
    return dict(
        db.session.scalar(sa.select(JobRun.counts).where(JobRun.outcome == JobOutcome.RUNNING))
    )


def _watch_posts(monkeypatch) -> list[dict]:
    """Before each post, the running row's counts."""
    seen: list[dict] = []
    real = missive_upkeep._post_once

    def watched(*args, **kwargs):
        seen.append(_running_counts())
        return real(*args, **kwargs)

    monkeypatch.setattr(missive_upkeep, "_post_once", watched)
    return seen


def test_undeliverable_publishes_its_progress_after_each_batch_and_post(app, fake, monkeypatch):
    for conversation in ("conv-1", "conv-2"):
        _messages(ContactFactory(), "failed", "failed", "failed", conversation=conversation)
    monkeypatch.setattr(maintenance, "UNDELIVERABLE_BATCH", 1)
    seen_excluding: list[dict] = []
    real_exclude = maintenance.exclude_contacts

    def exclude(*args, **kwargs):
        seen_excluding.append(_running_counts())
        return real_exclude(*args, **kwargs)

    monkeypatch.setattr(maintenance, "exclude_contacts", exclude)
    seen_posting = _watch_posts(monkeypatch)

    counts = exclude_undeliverable()

    assert seen_excluding == [{"found": 2, "excluded": 0}, {"found": 2, "excluded": 1}]
    assert seen_posting == [
        {"found": 2, "excluded": 2},
        {"found": 2, "excluded": 2, "posts_posted": 1, "posts_failed": 0},
    ]
    assert counts == {"found": 2, "excluded": 2, "posts_posted": 2, "posts_failed": 0}


def test_archive_publishes_its_progress_after_each_post(app, fake, monkeypatch):
    for conversation in ("conv-1", "conv-2"):
        _messages(ContactFactory(), "failed", "failed", conversation=conversation)
    seen = _watch_posts(monkeypatch)

    archive_double_failures()

    assert seen == [
        {"conversations_found": 2, "archived_posted": 0, "archived_failed": 0},
        {"conversations_found": 2, "archived_posted": 1, "archived_failed": 0},
    ]


def test_a_post_that_never_reached_missive_gives_its_claim_back(make_app, fake):
    # Redis (the shared Missive pace) does not answer: the run fails, and the conversation is
    # not marked as archived, so the next run archives it.
    app = make_app(**missive_settings(fake), REDIS_URL="redis://127.0.0.1:1/0")
    with app.app_context():
        _messages(ContactFactory(), "failed", "failed", conversation="conv-1")
        with pytest.raises(RedisConnectionError):
            archive_double_failures()
        assert _run("archive double failures").outcome == JobOutcome.FAILED
        mirror = db.session.scalar(sa.select(MissiveConversation))
        assert mirror.double_failure_archived_at is None
    assert fake.posts() == []
