"""worker.py runs RQ jobs inside the app; the scheduler registers periodic jobs idempotently."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from rq import Queue
from rq_scheduler import Scheduler

from app.extensions import db
from app.jobs import QUEUE_DEFAULT, QUEUES, get_queue
from app.jobs.schedule import ID_PREFIX, PERIODIC_JOBS, register_periodic_jobs
from app.jobs.tick import tick
from app.models import JobOutcome, JobRun
from tests.support import (
    drop_database,
    recreate_database,
    run_flask,
    run_worker_py,
    scratch_database,
    test_env,
)


def test_tick_records_a_successful_job_run(app):
    result = tick()
    run = db.session.get(JobRun, result["run_id"])
    assert run.name == "tick" and run.outcome == JobOutcome.SUCCESS
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_a_failing_job_is_recorded_as_failed_and_the_error_kept(app):
    from app.jobs.runs import recorded_run

    with pytest.raises(ZeroDivisionError):
        with recorded_run("doomed") as run:
            run.counts["before"] = 1
            1 / 0  # noqa: B018
    row = db.session.scalar(sa.select(JobRun).where(JobRun.name == "doomed"))
    assert row.outcome == JobOutcome.FAILED and "ZeroDivisionError" in row.error
    assert row.counts == {"before": 1}


def test_progress_is_published_on_the_running_row_and_the_outcome_keeps_it(app):
    from app.jobs.runs import recorded_run

    with recorded_run("long") as run:
        run.progress(done=5, total=10)
        db.session.expire_all()
        row = db.session.get(JobRun, run.run_id)
        assert row.outcome == JobOutcome.RUNNING and row.counts == {"done": 5, "total": 10}
        run.progress(done=10)
    db.session.expire_all()
    row = db.session.get(JobRun, run.run_id)
    assert row.counts == {"done": 10, "total": 10} and row.outcome == JobOutcome.SUCCESS


def test_registering_periodic_jobs_twice_keeps_one_job_per_fixed_id(redis_conn):
    scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=redis_conn)
    # A leftover periodic job from an older release is removed; other jobs are left alone.
    scheduler.cron("* * * * *", func="app.jobs.tick.tick", id=ID_PREFIX + "retired")
    scheduler.cron("0 * * * *", func="app.jobs.tick.tick", id="someone-elses-job")
    register_periodic_jobs(scheduler)
    register_periodic_jobs(scheduler)
    ids = sorted(job.id for job in scheduler.get_jobs())
    assert ids == sorted([job.job_id for job in PERIODIC_JOBS] + ["someone-elses-job"])
    tick_job = next(job for job in scheduler.get_jobs() if job.id == ID_PREFIX + "tick")
    assert tick_job.meta["cron_string"] == "* * * * *"
    assert tick_job.func_name == "app.jobs.tick.tick"


def test_scheduler_process_registers_jobs_and_is_idempotent(redis_conn, tmp_path):
    env = test_env(DATABASE_URL=f"sqlite:///{tmp_path / 'unused.db'}")
    for _ in range(2):
        done = run_worker_py(["scheduler", "--register-only"], env)
        assert done.returncode == 0, done.stderr
    scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=redis_conn)
    assert sorted(job.id for job in scheduler.get_jobs()) == sorted(
        job.job_id for job in PERIODIC_JOBS
    )


def test_get_queue_refuses_unknown_names(app):
    assert [get_queue(app, name).name for name in QUEUES] == list(QUEUES)
    with pytest.raises(ValueError):
        get_queue(app, "nope")


@pytest.mark.slow
def test_a_real_rq_worker_runs_the_tick_inside_the_app(redis_conn):
    url = recreate_database(scratch_database("worker"))
    try:
        env = test_env(DATABASE_URL=url)
        assert run_flask(["db", "upgrade"], env).returncode == 0
        Queue(QUEUE_DEFAULT, connection=redis_conn).enqueue("app.jobs.tick.tick")
        worker = run_worker_py(["worker", "--burst"], env)
        assert worker.returncode == 0, worker.stderr
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, outcome FROM job_runs")).all()
        engine.dispose()
        assert rows == [("tick", "success")]
    finally:
        drop_database(scratch_database("worker"))
