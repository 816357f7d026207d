"""Run now after a worker was SIGKILLed mid-run (a platform's kill, out of memory), with a real
`worker.py` process: the run's row, left `running`, is closed as abandoned with its reason in
words, and Run now is accepted within seconds instead of saying "already running" for two
hours; while the worker is alive and on it, Run now is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import Queue

from app import create_app
from app.extensions import db, get_redis
from app.jobs import QUEUE_MAINTENANCE, get_queue
from app.jobs.runs import recorded_run
from app.models import JobOutcome, JobRun, Role, User
from app.system.periodic import RUN_NOW_PREFIX
from bench.common import kill_tree
from tests import factories
from tests.conftest import sign_in
from tests.support import HX, make_test_config, migrated_scratch_database, start_worker_py, test_env

pytestmark = pytest.mark.slow

RUN_URL = "/system/periodic/retention/run"


def slow_retention(seconds: float) -> None:
    """Stands for a long retention run (the worker imports it by name): a `running` row with
    counts, then a long wait."""
    with recorded_run("retention") as run:
        run.progress(webhook_events_deleted=1000)
        time.sleep(seconds)


@pytest.fixture(scope="module")
def scratch_db() -> Iterator[str]:
    with migrated_scratch_database("runnowkill") as url:
        yield url


@pytest.fixture
def live(scratch_db) -> Iterator[Flask]:
    app = create_app(make_test_config(database_url=scratch_db, WTF_CSRF_ENABLED=False))
    with app.app_context():
        db.session.execute(sa.text("TRUNCATE job_runs, audit_log, users CASCADE"))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def the_run() -> JobRun | None:
    db.session.expire_all()
    return db.session.scalars(sa.select(JobRun).where(JobRun.name == "retention")).first()


def test_run_now_is_refused_while_the_worker_runs_it_and_accepted_seconds_after_a_sigkill(
    live, scratch_db
):
    user = factories.UserFactory(role=Role.OPERATOR, email="operator@example.org")
    db.session.commit()
    client = live.test_client()
    assert sign_in(client, db.session.get(User, user.id)).status_code == 302
    # As Run now would queue it, under Run now's job id.
    get_queue(live, QUEUE_MAINTENANCE).enqueue(
        f"{__name__}.slow_retention",
        120,
        job_id=RUN_NOW_PREFIX + "retention",
        job_timeout=600,
    )
    worker = start_worker_py(["worker"], test_env(DATABASE_URL=scratch_db))
    try:
        deadline = time.monotonic() + 60
        while (run := the_run()) is None or not run.counts:
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker never started the run"
            time.sleep(0.1)
        assert run.outcome == JobOutcome.RUNNING
        assert run.rq_job_id == RUN_NOW_PREFIX + "retention"
        assert run.worker_name and run.process  # who runs it, recorded
        # Alive and on it: refused, now and a few seconds later.
        for _ in range(2):
            refused = client.post(RUN_URL, headers=HX)
            assert refused.status_code == 409, refused.get_data(True)
            assert "retention is already running since" in refused.get_data(True)
            time.sleep(2)
        assert the_run().outcome == JobOutcome.RUNNING
        killed = time.monotonic()
        kill_tree(worker)  # SIGKILL: the worker and its work horse, no word to anyone
    finally:
        kill_tree(worker)
    started = Queue(QUEUE_MAINTENANCE, connection=get_redis(live)).started_job_registry
    assert RUN_NOW_PREFIX + "retention" in started.get_job_ids(cleanup=False)  # RQ: still on it
    # The page says so at once (a GET writes nothing)...
    row = client.get("/system/periodic/retention", headers=HX).get_data(as_text=True)
    assert "Abandoned: its worker stopped without finishing (the process that ran it" in row
    assert "Run now</button>" in row and the_run().outcome == JobOutcome.RUNNING
    # ...and Run now goes within seconds (RQ's worker key alone says "alive" for 90 s more).
    accepted = client.post(RUN_URL, headers=HX)
    assert accepted.status_code == 200, accepted.get_data(True)
    assert time.monotonic() - killed < 15
    queue = Queue(QUEUE_MAINTENANCE, connection=get_redis(live))
    assert queue.count == 1  # the new run waits
    # The dead execution is out of RQ's started registry (its cleanup would fail the new run).
    assert RUN_NOW_PREFIX + "retention" not in queue.started_job_registry.get_job_ids(cleanup=False)
    run = the_run()
    assert run.outcome == JobOutcome.FAILED and run.finished_at is not None
    assert run.error.startswith("Abandoned: its worker stopped without finishing (")
    assert "(the process that ran it (PID " in run.error and "it started at" in run.error
    assert run.counts == {"webhook_events_deleted": 1000}  # what it did is kept
    # The System page says what happened.
    page = client.get("/system/").get_data(as_text=True)
    row = page[page.index('id="system-periodic-retention"') :]
    row = row[: row.index("</li>")]
    assert "badge--failed" in row and "Abandoned: its worker stopped without finishing" in row
    # Closed once: a second look changes nothing.
    closed_at = run.finished_at
    client.get("/system/")
    assert the_run().finished_at == closed_at
