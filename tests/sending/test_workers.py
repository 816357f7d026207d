"""The engine as it runs in production: real `worker.py` RQ worker processes, a committed
PostgreSQL database, real Redis and the fake Twilio server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.extensions import db
from app.jobs.sending import enqueue_sending
from app.models import (
    Broadcast,
    BroadcastStatus,
    Contact,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.outbound import create_outbound
from app.sending.recovery import recover_stale_claims
from bench.common import kill_tree
from tests.fakes.twilio import FakeTwilio
from tests.support import (
    ROOT,
    make_test_config,
    migrated_scratch_database,
    run_worker_py,
    start_worker_py,
    test_env,
    twilio_worker_settings,
)

pytestmark = pytest.mark.slow
FROM = "+13135559999"


@pytest.fixture(scope="module")
def engine_db() -> Iterator[str]:
    with migrated_scratch_database("engine") as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=3) as server:
        yield server


@pytest.fixture
def settings(fake) -> dict[str, str]:
    return twilio_worker_settings(fake, TWILIO_FROM_NUMBER=FROM)


@pytest.fixture
def live(engine_db, settings) -> Iterator[Flask]:
    """An app on the committed engine database, emptied before each test."""
    from app.config import parse_quiet_hours

    config = {k: v for k, v in settings.items()}
    config["QUIET_HOURS"] = parse_quiet_hours(config["QUIET_HOURS"])
    config["SEND_RATE_MPS"] = float(config["SEND_RATE_MPS"])
    app = create_app(make_test_config(database_url=engine_db, **config))
    with app.app_context():
        db.session.execute(sa.text("TRUNCATE contacts, broadcasts, audit_log CASCADE"))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def seed(app: Flask, phones: list[str], *, second: str | None = "Follow-up", delay: int = 600):
    broadcast = Broadcast(
        first_message="First",
        second_message=second,
        delay_seconds=delay,
        status=BroadcastStatus.SENDING,
    )
    db.session.add(broadcast)
    contacts = [Contact(phone=phone) for phone in phones]
    db.session.add_all(contacts)
    db.session.flush()
    create_outbound(broadcast, [c.id for c in contacts], "First")
    db.session.commit()
    enqueue_sending(app)
    return broadcast, contacts


def phones(n: int, start: int = 0) -> list[str]:
    return [f"+1313555{start + i:04d}" for i in range(n)]


def worker_env(engine_db: str, settings: dict[str, str], **extra: str) -> dict[str, str]:
    return test_env(DATABASE_URL=engine_db, **{**settings, **extra})


def messages(step: Step = Step.FIRST) -> list[OutboundMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.step == step).order_by("id")
        )
    )


def test_a_worker_sends_every_message_once_and_schedules_each_follow_up(
    live, fake, engine_db, settings
):
    seed(live, phones(25), delay=600)
    done = run_worker_py(["worker", "--burst"], worker_env(engine_db, settings))
    assert done.returncode == 0, done.stderr[-3000:]
    sent = messages()
    assert len(sent) == 25 and {m.status for m in sent} == {MessageStatus.SENT}
    assert fake.stats()["accepted"] == 25 and fake.stats()["duplicates"] == 0
    follow_ups = {m.contact_id: m for m in messages(Step.SECOND)}
    for first in sent:
        follow_up = follow_ups[first.contact_id]
        assert follow_up.status == MessageStatus.SCHEDULED and follow_up.body == "Follow-up"
        gap = (follow_up.scheduled_for - first.sent_at).total_seconds()
        assert 595 <= gap <= 605


def test_errors_through_a_worker_fail_unsubscribe_and_exclude_as_the_policy_says(
    live, fake, engine_db, settings
):
    numbers = phones(4)
    fake.configure(error_numbers={numbers[0]: 21610, numbers[1]: 21211, numbers[2]: 21408})
    seed(live, numbers)
    done = run_worker_py(["worker", "--burst"], worker_env(engine_db, settings))
    assert done.returncode == 0, done.stderr[-3000:]
    by_phone = {m.contact.phone: m for m in messages()}
    assert [by_phone[n].error_code for n in numbers] == ["21610", "21211", "21408", None]
    assert [by_phone[n].status for n in numbers] == ["failed", "failed", "failed", "sent"]
    contacts = {c.phone: c for c in db.session.scalars(sa.select(Contact))}
    assert contacts[numbers[0]].unsubscribed and not contacts[numbers[0]].excluded
    assert contacts[numbers[1]].excluded and not contacts[numbers[1]].unsubscribed
    assert not contacts[numbers[2]].excluded and not contacts[numbers[2]].unsubscribed


@pytest.mark.parametrize("option", ["rate_429", "rate_500"])
def test_throttled_or_failing_provider_puts_messages_in_retrying_through_a_worker(
    live, fake, engine_db, settings, option
):
    fake.configure(**{option: 1.0})
    seed(live, phones(5))
    done = run_worker_py(["worker", "--burst"], worker_env(engine_db, settings))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = messages()
    assert {m.status for m in rows} == {MessageStatus.RETRYING}
    assert all(m.next_attempt_at > utcnow() + timedelta(seconds=50) for m in rows)
    assert fake.stats()["accepted"] == 0


def test_two_workers_share_one_senders_pace(live, fake, engine_db, settings):
    rate = 8
    seed(live, phones(33), second=None)
    env = worker_env(engine_db, settings, SEND_RATE_MPS=str(rate), SEND_PARALLEL_JOBS="4")
    workers = [
        subprocess.Popen(
            [sys.executable, "worker.py", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read()[-3000:]
    stamps = sorted(r["date_created"].timestamp() for r in fake.messages())
    assert len(stamps) == 33 and fake.stats()["duplicates"] == 0
    # Gaps at 8 a second, never much faster, however the two workers interleave. An arrival
    # is never before its booked slot but can be after it (each worker's first request opens
    # its connection, and a busy machine delays any), so the two warm-up arrivals are left out
    # of the span: a late first stamp would only shorten it.
    span = stamps[-1] - stamps[2]
    assert span >= 30 / rate * 0.95

    # Slots are booked exactly (GCRA in Redis), but the fake sees arrivals: each worker's first
    # request opens its connection and can reach the fake up to ~0.15 s after its slot, next to
    # the following one. After those two, arrivals follow the booked slots.
    def busiest_second(times: list[float]) -> int:
        return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)

    assert busiest_second(stamps) <= rate + 2
    assert busiest_second(stamps[2:]) <= rate + 1


def test_a_worker_killed_mid_batch_leaves_nothing_doubled_or_lost(live, fake, engine_db, settings):
    fake.configure(latency_ms=150)
    seed(live, phones(60), second=None)
    env = worker_env(engine_db, settings, SEND_CONCURRENCY="4")
    worker = start_worker_py(["worker"], env)
    try:
        deadline = time.monotonic() + 60
        while fake.stats()["accepted"] < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        kill_tree(worker, signal.SIGKILL)  # the worker and its work horse, mid-call
    stranded = [m for m in messages() if m.status == MessageStatus.SENDING]
    assert stranded, "the kill should leave claimed messages behind"
    later = utcnow() + timedelta(seconds=live.config["STALE_CLAIM_SECONDS"] + 1)
    counts = recover_stale_claims(live, later)
    assert counts["recovered_sent"] + counts["recovered_requeued"] == len(stranded)
    enqueue_sending(live)
    done = run_worker_py(["worker", "--burst"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = messages()
    assert {m.status for m in rows} == {MessageStatus.SENT}
    assert {m.provider_sid for m in rows} == {r["sid"] for r in fake.messages()}
    assert fake.stats()["accepted"] == 60 and fake.stats()["duplicates"] == 0
