"""Status reconciliation killed halfway (SIGKILL, a real separate process) and run again: the
second run finishes the rest without fetching again what the first one committed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastStatus,
    Contact,
    JobOutcome,
    JobRun,
    MessageStatus,
    OutboundMessage,
    Setting,
    utcnow,
)
from app.sending.reconcile import SID_CURSOR
from tests.fakes.twilio import FakeTwilio
from tests.support import ROOT, make_test_config, migrated_scratch_database, test_env

pytestmark = pytest.mark.slow
MESSAGES = 120
CHUNK = 10
# The job as a worker runs it, in a process of its own, with small chunks to kill it between.
JOB_SCRIPT = f"""
from app import create_app
import app.sending.reconcile as reconcile
reconcile.CHUNK_SIZE = {CHUNK}
from app.jobs.maintenance import reconcile_statuses_job
with create_app().app_context():
    print(reconcile_statuses_job())
"""


@pytest.fixture(scope="module")
def scratch_db() -> Iterator[str]:
    with migrated_scratch_database("reconcile") as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=9, latency_ms=20) as server:
        yield server


@pytest.fixture
def settings(fake) -> dict[str, str]:
    return fake.app_settings(TWILIO_READS_PER_SECOND="40", QUIET_HOURS="off")


@pytest.fixture
def live(scratch_db, settings, fake) -> Iterator:
    config = {**settings, "TWILIO_READS_PER_SECOND": 40.0, "QUIET_HOURS": None}
    app = create_app(make_test_config(database_url=scratch_db, **config))
    with app.app_context():
        db.session.execute(sa.text("TRUNCATE contacts, broadcasts, job_runs, settings CASCADE"))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def seed(fake: FakeTwilio) -> dict[int, str]:
    """MESSAGES sent messages of one broadcast, each delivered at Twilio; {row id: SID}."""
    broadcast = Broadcast(first_message="Hello", status=BroadcastStatus.SENDING)
    db.session.add(broadcast)
    contacts = [Contact(phone=f"+1313555{i:04d}") for i in range(MESSAGES)]
    db.session.add_all(contacts)
    db.session.flush()
    rows = []
    for contact in contacts:
        sid = fake.add_message(contact.phone, "Hello", "delivered")
        rows.append(
            OutboundMessage(
                broadcast_id=broadcast.id,
                contact_id=contact.id,
                body="Hello",
                status=MessageStatus.SENT,
                transport="twilio",
                provider_sid=sid,
                provider_status="sent",
                sent_at=utcnow(),
            )
        )
    db.session.add_all(rows)
    db.session.commit()
    return {row.id: row.provider_sid for row in rows}


def delivered_ids() -> set[int]:
    db.session.expire_all()
    return set(
        db.session.scalars(
            sa.select(OutboundMessage.id).where(OutboundMessage.status == MessageStatus.DELIVERED)
        )
    )


def test_a_run_killed_halfway_is_finished_by_the_next_without_fetching_twice(
    live, fake, scratch_db, settings
):
    sids = seed(fake)
    env = test_env(DATABASE_URL=scratch_db, **settings)
    first = subprocess.Popen(
        [sys.executable, "-c", JOB_SCRIPT],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(delivered_ids()) < 3 * CHUNK:  # some chunks committed
            assert first.poll() is None, first.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the job never committed a chunk"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    committed = delivered_ids()
    assert 3 * CHUNK <= len(committed) < MESSAGES, "killed too late to leave work for the next"
    assert len(committed) % CHUNK == 0  # whole chunks only: each one is one transaction
    cursor = db.session.get(Setting, SID_CURSOR + "all")
    assert cursor.value["after_id"] == max(committed)  # committed with its chunk
    run = db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).one()
    assert run.outcome == JobOutcome.RUNNING
    # Its progress is published right after each chunk's commit: at most one chunk behind.
    assert len(committed) - CHUNK <= run.counts.get("checked", 0) <= len(committed)
    fetched_by_first = dict(fake.fetches)

    second = subprocess.run(
        [sys.executable, "-c", JOB_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert delivered_ids() == set(sids)  # every message resolved
    # What the first run committed was not fetched again; what it was reading when it died
    # (one chunk at most, uncommitted) was.
    for row_id in committed:
        assert fake.fetches[sids[row_id]] == 1
    refetched = [sid for sid, n in fake.fetches.items() if n > 1]
    assert len(refetched) <= CHUNK
    assert set(refetched) <= set(fetched_by_first)
    assert sum(fake.fetches.values()) == MESSAGES + len(refetched)
    runs = db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()
    assert runs[-1].outcome == JobOutcome.SUCCESS
    assert runs[-1].counts["checked"] == MESSAGES - len(committed)
    assert db.session.get(Setting, SID_CURSOR + "all") is None  # the pass is done


def test_two_runs_at_once_take_turns_and_fetch_each_message_once(live, fake, scratch_db, settings):
    sids = seed(fake)
    env = test_env(DATABASE_URL=scratch_db, **settings)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB_SCRIPT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.wait(120) == 0, run.stderr.read()[-3000:]
    assert delivered_ids() == set(sids)
    assert fake.fetches == {sid: 1 for sid in sids.values()}
    job_runs = db.session.scalars(sa.select(JobRun)).all()
    assert [r.outcome for r in job_runs] == [JobOutcome.SUCCESS] * 2
    assert sum(r.counts["checked"] for r in job_runs) == MESSAGES
