"""Two scheduler processes started by mistake: each periodic job is registered once and a due one
is enqueued once; both stop cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from rq import Queue
from rq_scheduler import Scheduler

from app.jobs import QUEUE_DEFAULT, QUEUE_MAINTENANCE
from app.jobs.schedule import ID_PREFIX, PERIODIC_JOBS
from bench.common import kill_tree
from tests.support import ROOT, test_env

pytestmark = pytest.mark.slow
# A daily job, so its own next run (a cron time) never falls inside the test the way the
# every-minute tick's would; each round makes it due by hand.
DAILY = ID_PREFIX + "retention"


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_schedulers_register_each_job_once_and_enqueue_a_due_job_once(redis_conn, tmp_path):
    env = test_env(DATABASE_URL=f"sqlite:///{tmp_path / 'unused.db'}")
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    schedulers = []
    for path in logs:
        with path.open("w") as out:
            schedulers.append(
                subprocess.Popen(
                    [sys.executable, "worker.py", "scheduler", "--interval", "1"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        instances = lambda: redis_conn.keys(Scheduler.redis_scheduler_namespace_prefix + "*")  # noqa: E731
        wait_for(lambda: len(instances()) == 2, "both schedulers running")
        scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=redis_conn)
        ids = [job.id for job in scheduler.get_jobs()]
        assert sorted(ids) == sorted(job.job_id for job in PERIODIC_JOBS)

        queue = Queue(QUEUE_MAINTENANCE, connection=redis_conn)
        for due in range(1, 4):
            # The job is due now; whichever scheduler holds the lock moves it to its queue and
            # books its next run; the other, polling every second too, must not move it again.
            redis_conn.zadd(Scheduler.scheduled_jobs_key, {DAILY: time.time() - 1})
            wait_for(
                # (None for a moment: between taking it out and booking the next run)
                lambda: (redis_conn.zscore(Scheduler.scheduled_jobs_key, DAILY) or 0) > time.time(),
                "the job booked for its next run",
            )
            # Both schedulers poll at least once more (each refreshes its key's expiry).
            for key in instances():
                redis_conn.expire(key, 1000)
            wait_for(
                lambda: all(0 < redis_conn.ttl(key) <= 11 for key in instances()),
                "another poll by each scheduler",
            )
            assert queue.job_ids == [DAILY] * due

        for process in schedulers:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=20) for process in schedulers]
    finally:
        for process in schedulers:
            kill_tree(process)
    assert codes == [0, 0], "".join(path.read_text() for path in logs)[-3000:]
    assert not redis_conn.exists(Scheduler.scheduler_lock_key)
    assert all(redis_conn.hexists(key, "death") for key in instances())
