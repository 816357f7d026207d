"""Recording job runs: one row per periodic or maintenance job, with outcome, counts and error,
and closing the `running` rows whose run died without a word (a worker SIGKILLed or out of
memory): the one rule for that, used by the tick and by the System page's Run now."""

from __future__ import annotations

import logging
import os
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from app.extensions import db
from app.models import JobOutcome, JobRun, utcnow

log = logging.getLogger(__name__)

# A `running` row older than this is closed whatever else says: no job runs this long (RQ stops
# one at its timeout, an hour at most). It is also all there is for a row no process or RQ job
# can be checked for (recorded before 0013, or by a process on another machine with Redis down).
RUNNING_AT_MOST = timedelta(hours=2)


class recorded_run:  # noqa: N801  (used as `with recorded_run("tick") as run:`)
    """Commit a `running` row first, then the outcome: a failure is recorded and re-raised."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.run_id: int | None = None
        self.counts: dict[str, Any] = {}
        self.outcome = JobOutcome.SUCCESS

    def __enter__(self) -> recorded_run:
        # Who runs it, so that a run whose process or worker died can be told from a live one.
        rq_job = get_current_job()
        run = JobRun(
            name=self.name,
            outcome=JobOutcome.RUNNING,
            rq_job_id=rq_job.id if rq_job is not None else None,
            worker_name=(rq_job.worker_name or None) if rq_job is not None else None,
            process=this_process(),
        )
        db.session.add(run)
        db.session.commit()
        self.run_id = run.id
        return self

    def progress(self, **counts: Any) -> None:
        """Publish the counts so far on the `running` row (the System page shows them live).

        It commits, so call it right after one of the job's own commits, never with half a batch
        pending.
        """
        self.counts.update(counts)
        if self.run_id is None:
            return
        db.session.execute(
            sa.update(JobRun).where(JobRun.id == self.run_id).values(counts=dict(self.counts))
        )
        db.session.commit()

    def skip(self, reason: str) -> None:
        self.outcome = JobOutcome.SKIPPED
        self.counts["skipped"] = reason

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            db.session.rollback()
        run = db.session.get(JobRun, self.run_id)
        if run is None:  # deleted under us (retention ran concurrently): nothing to record
            return
        run.finished_at = utcnow()
        run.counts = dict(self.counts)
        if exc is not None:
            run.outcome = JobOutcome.FAILED
            run.error = "".join(traceback.format_exception(exc_type, exc, tb))[-4000:]
        else:
            run.outcome = self.outcome
        db.session.commit()


# --- Runs whose process died --------------------------------------------------------------


def _pid_namespace() -> str | None:
    """This machine's boot and this process's PID namespace: two processes whose PIDs can be
    compared share it (a container has a namespace of its own, even under the host's name)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return None


def _stat(pid: int | str) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process, from /proc; None if gone."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def this_process() -> str | None:
    """`<boot id>/<PID namespace>/<pid>/<start time>` of the calling process (Linux only): the
    process a run is recorded by, told apart from a later one that reuses its PID."""
    namespace = _pid_namespace()
    if namespace is None:
        return None
    try:
        _, started = _stat("self")
    except (OSError, ValueError, IndexError):
        return None
    return f"{namespace}/{os.getpid()}/{started}"


def process_alive(process: str | None) -> bool | None:
    """Whether the process `this_process()` described still runs: False when it exited, is a
    zombie or its PID is now another process's; None when it cannot be told from here (another
    machine or container, or not recorded)."""
    if not process:
        return None
    parts = process.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != _pid_namespace():
        return None
    try:
        state, started = _stat(int(parts[2]))
    except FileNotFoundError:
        return False
    except (OSError, ValueError, IndexError):
        return None
    return started == parts[3] and state not in ("Z", "X")


def worker_gone(connection: Redis, worker_name: str) -> bool:
    """Whether the RQ worker no longer reports to Redis: its key expired (it stopped sending
    heartbeats: RQ lets it live the job monitoring interval plus 60 s) or says it died. Raises
    RedisError when Redis does not answer."""
    key = Worker.redis_worker_namespace_prefix + worker_name
    with connection.pipeline() as pipe:
        pipe.exists(key)
        pipe.hexists(key, "death")
        exists, dead = pipe.execute()
    return not exists or bool(dead)


def _started_at(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.strftime('%b %-d, %Y %-I:%M %p')} {local.strftime('%Z')}"


_OVER = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def abandoned_because(run: JobRun, connection: Redis | None, now: datetime) -> str | None:
    """Why the `running` row `run` belongs to a run that is over without having said so, in
    words; None while it may be alive.

    The process that ran it, when it can be seen from here (this machine and PID namespace),
    decides: gone, the run is over (a worker SIGKILLed with its work horse); alive, it runs (a
    work horse whose worker alone was killed finishes its job). Otherwise Redis is asked: the
    run is over when its RQ worker no longer reports (its key lives the job monitoring interval
    plus 60 s after its last heartbeat), or its RQ job's latest execution, begun before this
    row, ended (a work horse killed out of memory: the worker marks the job failed). A job id
    is reused (each scheduled run, each Run now), so a later execution's state says nothing.
    `connection` None, or Redis not answering: only what needs no Redis is checked. A row
    older than RUNNING_AT_MOST is closed in any case."""
    if run.started_at < now - RUNNING_AT_MOST:
        return "it has been running for more than 2 hours, longer than any job may run"
    alive = process_alive(run.process)
    if alive is False:
        pid = (run.process or "").split("/")[2]
        return f"the process that ran it (PID {pid}) is gone"
    if alive or connection is None:
        return None
    try:
        if run.worker_name and worker_gone(connection, run.worker_name):
            return f"its RQ worker {run.worker_name} no longer reports to Redis"
        if run.rq_job_id:
            rq_job = Job.fetch(run.rq_job_id, connection=connection)
            status = rq_job.get_status(refresh=False)
            started = rq_job.started_at
            if status in _OVER and started is not None and started <= run.started_at:
                return f"its RQ job {run.rq_job_id} is {status.value}"
    except NoSuchJobError:
        return None  # expired or deleted: says nothing about this run
    except (RedisError, OSError):
        return None  # cannot be checked now: left running
    return None


def abandoned_reason(
    run: JobRun, connection: Redis | None, now: datetime, zone: ZoneInfo
) -> str | None:
    """What a person reads about a `running` row whose run is over without having said so
    (abandoned_because), its start in the organisation's `zone`; None while it may be alive."""
    because = abandoned_because(run, connection, now)
    if because is None:
        return None
    return (
        f"Abandoned: its worker stopped without finishing ({because}); it started at "
        f"{_started_at(run.started_at, zone)}. Nothing more will be recorded for this run."
    )


def close_abandoned_runs(connection: Redis | None, zone: ZoneInfo, name: str | None = None) -> int:
    """Close, as failed with the reason in words, each `running` row (of job `name`, or of
    every job) whose run is over without having said so (abandoned_reason); each row once
    (a conditional update), whoever else closes it at the same moment. `connection` is the
    app's Redis, or None to leave Redis out; a Redis that does not answer is left out too.
    Returns how many rows it closed."""
    query = sa.select(JobRun).where(JobRun.outcome == JobOutcome.RUNNING)
    if name is not None:
        query = query.where(JobRun.name == name)
    running = list(db.session.scalars(query.order_by(JobRun.id)))
    if not running:
        return 0
    now = utcnow()
    if connection is not None:
        try:
            connection.ping()
        except (RedisError, OSError):
            connection = None
    closed = 0
    for run in running:
        reason = abandoned_reason(run, connection, now, zone)
        if reason is None:
            continue
        done = db.session.execute(
            sa.update(JobRun)
            .where(JobRun.id == run.id, JobRun.outcome == JobOutcome.RUNNING)
            .values(outcome=JobOutcome.FAILED, finished_at=now, error=reason)
            .execution_options(synchronize_session=False)
        ).rowcount
        if done:
            closed += 1
            log.warning("job run %s (%s) closed as abandoned: %s", run.id, run.name, reason)
    db.session.commit()
    if closed:
        db.session.expire_all()
    return closed
