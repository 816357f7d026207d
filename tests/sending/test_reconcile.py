"""Status reconciliation by SID against the fake Twilio (real HTTP, the real twilio client)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs.maintenance import reconcile_statuses_job
from app.models import JobOutcome, JobRun, MessageStatus, OutboundMessage, Step
from app.sending.reconcile import reconcile_statuses
from tests.factories import BroadcastFactory, ContactFactory, OutboundMessageFactory
from tests.fakes.twilio import FakeTwilio

FROM = "+13135559999"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=11) as server:
        yield server


@pytest.fixture
def twilio_app(engine_app, fake):
    def make(**overrides):
        settings = fake.app_settings(
            TWILIO_FROM_NUMBER=FROM,
            PUBLIC_BASE_URL="https://broadcaster.example.org",
            TWILIO_READS_PER_SECOND=1000.0,
        )
        return engine_app(**{**settings, **overrides})

    return make


@pytest.fixture
def app(twilio_app) -> Iterator:
    app = twilio_app()
    with app.app_context():
        yield app


def held(fake: FakeTwilio, status: str, error_code: int | None = None, **fields):
    """A `sent` row whose SID the fake holds with `status`."""
    message = OutboundMessageFactory(sent=True, **fields)
    message.provider_sid = fake.add_message(message.contact.phone, message.body, status, error_code)
    db.session.commit()
    return message


def fresh(message: OutboundMessage) -> OutboundMessage:
    db.session.expire_all()
    return db.session.get(OutboundMessage, message.id)


def test_a_late_delivered_after_sent_is_fetched_by_sid_and_applied(app, fake):
    message = held(fake, "delivered")
    counts = reconcile_statuses(app)
    assert counts["checked"] == 1 and counts["updated"] == 1
    row = fresh(message)
    assert row.status == MessageStatus.DELIVERED and row.provider_status == "delivered"
    assert row.delivered_at is not None


def test_a_carrier_failure_is_stored_with_its_code(app, fake):
    message = held(fake, "undelivered", 30003)
    reconcile_statuses(app)
    row = fresh(message)
    assert row.status == MessageStatus.UNDELIVERED and row.error_code == "30003"


def test_a_first_message_and_its_follow_up_each_get_their_own_sids_status(app, fake):
    broadcast = BroadcastFactory(sending=True)
    contact = ContactFactory()
    first = held(fake, "undelivered", 30003, broadcast=broadcast, contact=contact)
    second = held(
        fake, "delivered", broadcast=broadcast, contact=contact, step=Step.SECOND, body="Again?"
    )
    assert reconcile_statuses(app)["updated"] == 2
    assert fresh(first).status == MessageStatus.UNDELIVERED
    assert fresh(second).status == MessageStatus.DELIVERED


def test_an_unknown_status_value_is_stored_without_a_crash_and_moves_nothing(app, fake):
    message = held(fake, "teleported")
    counts = reconcile_statuses(app)
    assert counts["errors"] == 0 and counts["updated"] == 1
    row = fresh(message)
    assert row.status == MessageStatus.SENT and row.provider_status == "teleported"


def test_a_burst_of_429s_is_waited_out_and_every_sid_ends_resolved(app, fake):
    messages = [held(fake, "delivered") for _ in range(4)]
    fake.answer_reads_with_429(6)
    counts = reconcile_statuses(app, workers=2)
    assert counts["rate_limited"] == 6 and counts["errors"] == 0
    assert counts["updated"] == 4
    assert {fresh(m).status for m in messages} == {MessageStatus.DELIVERED}


def test_a_sid_limited_past_its_retries_is_an_error_left_for_the_next_run(app, fake):
    message = held(fake, "delivered")
    fake.answer_reads_with_429(10)
    counts = reconcile_statuses(app, max_429_retries=2)
    assert counts["errors"] == 1 and counts["rate_limited"] == 3
    assert fresh(message).status == MessageStatus.SENT
    fake.answer_reads_with_429(0)
    assert reconcile_statuses(app)["updated"] == 1


def test_one_send_only_leaves_the_other_sends_alone(app, fake):
    mine = held(fake, "delivered")
    other = held(fake, "delivered")
    counts = reconcile_statuses(app, send=mine.broadcast)
    assert counts["checked"] == 1
    assert fresh(mine).status == MessageStatus.DELIVERED
    assert fresh(other).status == MessageStatus.SENT


def test_running_twice_changes_nothing_the_second_time(app, fake):
    held(fake, "sent")
    held(fake, "teleported")
    delivered = held(fake, "delivered")
    first = reconcile_statuses(app)
    assert first["updated"] == 2 and first["unchanged"] == 1  # "sent" was known already
    second = reconcile_statuses(app)
    assert second["checked"] == 2 and second["updated"] == 0 and second["unchanged"] == 2
    assert fresh(delivered).status == MessageStatus.DELIVERED


def test_a_run_stopped_after_one_chunk_is_continued_by_the_next(app, fake):
    messages = [held(fake, "delivered") for _ in range(5)]
    counts = reconcile_statuses(app, chunk_size=2, limit=2)
    assert counts["checked"] == 2
    assert [fresh(m).status for m in messages].count(MessageStatus.DELIVERED) == 2
    assert reconcile_statuses(app, chunk_size=2)["checked"] == 3
    assert {fresh(m).status for m in messages} == {MessageStatus.DELIVERED}


def test_old_final_and_sidless_messages_are_not_fetched(app, fake):
    old = held(fake, "delivered")
    old.created_at = old.created_at.replace(year=old.created_at.year - 1)
    OutboundMessageFactory(delivered=True)
    OutboundMessageFactory()
    db.session.commit()
    assert reconcile_statuses(app)["checked"] == 0


def test_the_job_records_its_counts(app, fake):
    message = held(fake, "delivered")
    counts = reconcile_statuses_job(broadcast_id=message.broadcast_id)
    assert counts["updated"] == 1
    run = db.session.scalars(sa.select(JobRun).order_by(JobRun.id.desc())).first()
    assert run.outcome == JobOutcome.SUCCESS and run.counts["updated"] == 1


def test_the_job_is_skipped_and_recorded_with_another_transport(sim_app):
    counts = reconcile_statuses_job()
    assert "missive" in counts["skipped"] or "simulator" in counts["skipped"]
    run = db.session.scalars(sa.select(JobRun).order_by(JobRun.id.desc())).first()
    assert run.outcome == JobOutcome.SKIPPED


def test_the_read_pace_is_twilio_reads_per_second(twilio_app):
    from app.config import ConfigError, load_config
    from app.sending.reconcile import reads_bucket

    assert load_config({})["TWILIO_READS_PER_SECOND"] == 20.0
    assert load_config({"TWILIO_READS_PER_SECOND": "5"})["TWILIO_READS_PER_SECOND"] == 5.0
    with pytest.raises(ConfigError, match="TWILIO_READS_PER_SECOND"):
        load_config({"TWILIO_READS_PER_SECOND": "fast"})
    app = twilio_app(TWILIO_READS_PER_SECOND=4.0)
    with app.app_context():
        assert reads_bucket(app).interval_us == 250_000  # one read every 0.25 s
