"""A deploy's SIGTERM, as a platform sends it, to real `worker.py` processes in the middle of a
batch: calls in flight are recorded, untouched claims go back to `queued`, the worker exits 0 and
nothing is left `sending`; a call that then times out is `unknown`, never resent blindly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.config import parse_quiet_hours
from app.extensions import db
from app.jobs import QUEUE_SENDING, get_queue
from app.jobs.sending import SEND_JOB, enqueue_sending
from app.models import Broadcast, BroadcastStatus, Contact, MessageStatus, OutboundMessage, utcnow
from app.sending.outbound import create_outbound
from app.sending.recovery import recover_stale_claims
from bench.common import kill_tree
from tests.fakes.twilio import FakeTwilio
from tests.support import (
    ROOT,
    make_test_config,
    migrated_scratch_database,
    run_worker_py,
    test_env,
    twilio_worker_settings,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shutdown_db() -> Iterator[str]:
    with migrated_scratch_database("shutdown") as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=5) as server:
        yield server


@pytest.fixture
def settings(fake) -> dict[str, str]:
    return twilio_worker_settings(fake)


@pytest.fixture
def live(shutdown_db, settings) -> Iterator[Flask]:
    config = dict(settings)
    config["QUIET_HOURS"] = parse_quiet_hours(config["QUIET_HOURS"])
    config["SEND_RATE_MPS"] = float(config["SEND_RATE_MPS"])
    app = create_app(make_test_config(database_url=shutdown_db, **config))
    with app.app_context():
        db.session.execute(sa.text("TRUNCATE contacts, broadcasts, job_runs CASCADE"))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def seed(app: Flask, n: int) -> None:
    broadcast = Broadcast(first_message="Deploy check", status=BroadcastStatus.SENDING)
    db.session.add(broadcast)
    contacts = [Contact(phone=f"+1313555{i:04d}") for i in range(n)]
    db.session.add_all(contacts)
    db.session.flush()
    create_outbound(broadcast, [c.id for c in contacts], "Deploy check")
    db.session.commit()
    assert enqueue_sending(app) == 1


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as log_file:
        return subprocess.Popen(
            [sys.executable, "worker.py", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(condition, timeout: float = 90.0, what: str = "condition", log: Path | None = None):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.02)


def json_lines(log: str) -> list[dict]:
    lines = []
    for line in log.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # a traceback's lines
    return lines


def rows() -> list[OutboundMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboundMessage).order_by(OutboundMessage.id)))


def test_sigterm_mid_batch_records_calls_in_flight_and_gives_back_the_rest(
    live, fake, shutdown_db, settings, tmp_path
):
    fake.configure(latency_ms=250)
    seed(live, 60)
    env = test_env(DATABASE_URL=shutdown_db, **settings, SEND_CONCURRENCY="4", LOG_FORMAT="json")
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        # Well inside the one batch of 60 (claimed at once): calls are in flight right now.
        wait_for(
            lambda: fake.stats()["accepted"] >= 8,
            what="the first calls",
            log=tmp_path / "worker.log",
        )
        os.kill(worker.pid, signal.SIGTERM)  # this process only, as `docker stop` would
        signalled = time.monotonic()
        code = worker.wait(timeout=30)
        exit_seconds = time.monotonic() - signalled
    finally:
        kill_tree(worker)
    log = (tmp_path / "worker.log").read_text()
    assert code == 0, log[-3000:]
    assert exit_seconds < 10, log[-3000:]

    messages = rows()
    by_status: dict[str, list[OutboundMessage]] = {}
    for m in messages:
        by_status.setdefault(m.status, []).append(m)
    assert set(by_status) == {MessageStatus.SENT, MessageStatus.QUEUED}, log[-3000:]
    records = fake.messages()
    # Every call the provider answered is recorded, with its SID; none is left `sending`.
    assert {m.provider_sid for m in by_status["sent"]} == {r["sid"] for r in records}
    assert 8 <= len(records) < 60
    # The claims never handed to the provider are queued again, as if never claimed.
    assert all(m.attempts == 0 and m.claimed_at is None for m in by_status["queued"])
    # The job's log line says it stopped and what it gave back; a drain job waits for the rest.
    jobs = [line for line in json_lines(log) if line["logger"] == "broadcaster.job"]
    assert len(jobs) == 1 and jobs[0]["func"] == SEND_JOB, log[-3000:]
    assert jobs[0]["stopped"] is True and jobs[0]["outcome"] == "finished"
    assert jobs[0]["unsent"] == len(by_status["queued"])
    assert jobs[0]["accepted"] == len(records) and jobs[0]["broadcast_ids"] == [
        messages[0].broadcast_id
    ]
    assert any(j.func_name == SEND_JOB for j in get_queue(live, QUEUE_SENDING).get_jobs()), jobs[0]

    # The next worker sends the rest: every message once.
    done = run_worker_py(["worker", "--burst"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {m.status for m in rows()} == {MessageStatus.SENT}, done.stderr[-3000:]
    assert fake.stats()["accepted"] == 60 and fake.stats()["duplicates"] == 0


def test_sigterm_during_a_call_that_times_out_leaves_it_unknown_never_resent(
    live, fake, shutdown_db, settings, tmp_path
):
    # Every create hangs past the read timeout; the fake keeps the message (Twilio got it).
    fake.configure(rate_timeout=1.0, timeout_accepts=1.0, timeout_seconds=15)
    seed(live, 3)
    env = test_env(
        DATABASE_URL=shutdown_db, **settings, SEND_CONCURRENCY="1", PROVIDER_READ_TIMEOUT="2"
    )
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(
            lambda: fake.stats()["timeouts"] >= 1,
            what="the hanging call",
            log=tmp_path / "worker.log",
        )
        signalled = time.monotonic()
        kill_tree(worker, signal.SIGTERM)  # every process of the tree, as Heroku does
        code = worker.wait(timeout=30)
        exit_seconds = time.monotonic() - signalled
    finally:
        kill_tree(worker)
    log = (tmp_path / "worker.log").read_text()
    assert code == 0, log[-3000:]
    assert exit_seconds < 10, log[-3000:]

    first, *rest = rows()
    assert first.status == MessageStatus.UNKNOWN
    assert first.error_message == "no answer after sending: ReadTimeout"
    assert [m.status for m in rest] == [MessageStatus.QUEUED, MessageStatus.QUEUED]
    assert fake.stats()["requests"] == 1

    # A healthy provider and another worker: the rest go, the unknown one is not sent again.
    fake.configure(rate_timeout=0.0)
    done = run_worker_py(["worker", "--burst"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    first, *rest = rows()
    assert first.status == MessageStatus.UNKNOWN
    assert [m.status for m in rest] == [MessageStatus.SENT, MessageStatus.SENT]
    assert fake.stats()["accepted"] == 3 and fake.stats()["duplicates"] == 0
    # Recovery asks Twilio (SPEC 6.4), which has it: sent, with its SID.
    later = utcnow() + timedelta(seconds=live.config["STALE_CLAIM_SECONDS"] + 1)
    assert recover_stale_claims(live, later)["recovered_sent"] == 1
    first = rows()[0]
    assert first.status == MessageStatus.SENT
    assert first.provider_sid == fake.messages()[0]["sid"]


def test_a_job_that_cannot_stop_early_is_stopped_before_the_platforms_sigkill(
    live, shutdown_db, settings, tmp_path
):
    from rq import Queue

    from app.extensions import get_redis

    queue = Queue("maintenance", connection=get_redis(live))
    job = queue.enqueue("time.sleep", 120, job_timeout=600)
    env = test_env(DATABASE_URL=shutdown_db, **settings, SHUTDOWN_GRACE_SECONDS="2")
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: job.get_status(refresh=True) == "started", what="the job to start")
        signalled = time.monotonic()
        kill_tree(worker, signal.SIGTERM)
        code = worker.wait(timeout=30)
        exit_seconds = time.monotonic() - signalled
    finally:
        kill_tree(worker)
    log = (tmp_path / "worker.log").read_text()
    assert code == 0 and exit_seconds < 10, log[-3000:]
    # Failed with the reason, where a person (and RQ's failed registry) can see it.
    assert job.get_status(refresh=True) == "failed"
    assert job.id in queue.failed_job_registry.get_job_ids()
    assert "still running 2 s after SIGTERM" in job.latest_result().exc_string
    assert "job sleep failed" in log and "ShutDownImminentException" in log


def test_in_a_horse_the_first_sigterm_sets_the_flag_and_later_ones_are_ignored():
    from app.jobs.shutdown import install_horse_handlers, stop_requested

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    try:
        install_horse_handlers(grace_seconds=60)
        assert not stop_requested.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(stop_requested.is_set, timeout=5, what="the stop flag")
        # The platform's SIGTERM and the worker's forwarded one land together: the second is
        # ignored (a second run of the handler inside the first could deadlock on the Event).
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)
        # The grace timer runs: the job will be stopped if it does not return by itself.
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 60
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        stop_requested.clear()
