"""The periodic jobs as people see them: schedules in words and local time, last and next runs,
and "Run now" (enqueued, never run in the web process), for the System page and the CLI."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from crontab import CronTab
from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq_scheduler import Scheduler

from app.extensions import db, get_redis
from app.jobs import get_queue
from app.jobs.runs import abandoned_reason, close_abandoned_runs, worker_gone
from app.jobs.schedule import PERIODIC_JOBS, PeriodicJob
from app.models import JobOutcome, JobRun, utcnow

RUN_NOW_PREFIX = "run-now-"
_ASK = object()

# What each count of a job's summary counts, in words (singular, plural); a count not listed
# reads as its key.
COUNT_WORDS: dict[str, tuple[str, str]] = {
    # status reconciliation
    "checked": ("message checked", "messages checked"),
    "updated": ("updated", "updated"),
    "unchanged": ("unchanged", "unchanged"),
    "missing": ("unknown to Twilio", "unknown to Twilio"),
    "errors": ("error", "errors"),
    "rate_limited": (
        "rate-limited answer (429) waited out",
        "rate-limited answers (429) waited out",
    ),
    "matched": ("matched", "matched"),
    "list_updated": ("matched and updated", "matched and updated"),
    "list_unchanged": ("matched, unchanged", "matched, unchanged"),
    "list_errors": ("list page not read", "list pages not read"),
    "ambiguous": ("ambiguous, left alone", "ambiguous, left alone"),
    "unmatched": ("not found", "not found"),
    "to_check": ("message to check", "messages to check"),
    "listed": ("Twilio message listed", "Twilio messages listed"),
    # undeliverable numbers
    "found": ("number found", "numbers found"),
    "excluded": ("contact excluded", "contacts excluded"),
    "posts_posted": ("note posted to Missive", "notes posted to Missive"),
    "posts_failed": ("note Missive refused", "notes Missive refused"),
    "posts_without_conversation": (
        "number without a Missive conversation",
        "numbers without a Missive conversation",
    ),
    # archive double failures
    "conversations_found": ("conversation found", "conversations found"),
    "archived_posted": ("conversation archived", "conversations archived"),
    "archived_failed": ("archive Missive refused", "archives Missive refused"),
    # retention
    "webhook_events_deleted": ("webhook log entry deleted", "webhook log entries deleted"),
    "job_runs_deleted": ("job run deleted", "job runs deleted"),
    # tick
    "send_jobs_enqueued": ("send job queued", "send jobs queued"),
    "sends_finished": ("send finished", "sends finished"),
    "stats_refreshed": ("statistics refreshed", "statistics refreshed"),
    "abandoned_runs": ("abandoned run closed", "abandoned runs closed"),
    "label_jobs_enqueued": ("label job queued", "label jobs queued"),
}


def job_by_id(job_id: str) -> PeriodicJob | None:
    return next((job for job in PERIODIC_JOBS if job.id == job_id), None)


def job_function(job: PeriodicJob) -> Callable[[], Any]:
    module, _, name = job.func.rpartition(".")
    return getattr(importlib.import_module(module), name)


# --- Words -------------------------------------------------------------------------------


def next_run(cron: str, now: datetime) -> datetime:
    """The next time the UTC cron `cron` fires after `now` (aware, UTC), as rq-scheduler does."""
    return CronTab(cron).next(now=now, return_datetime=True, default_utc=True)


def _clock(moment: datetime) -> str:
    return moment.strftime("%-I:%M %p")


def schedule_in_words(cron: str, zone: ZoneInfo, now: datetime) -> tuple[str, str]:
    """(`Every day at 10:43 PM (America/Detroit)`, `03:43 UTC; 11:43 PM in daylight saving
    time`): the schedule in the organisation's zone at its next run, so a UTC time reads right
    on either side of a daylight-saving change; the second part says what moves and when."""
    fields = cron.split()
    if len(fields) != 5:
        return f"On the cron schedule {cron} (UTC)", ""
    minute, hour, day, month, weekday = fields
    if fields == ["*"] * 5:
        return "Every minute", ""
    if day != "*" or month != "*":
        return f"On the cron schedule {cron} (UTC)", ""
    if minute.startswith("*/") and minute[2:].isdigit() and hour == "*" and weekday == "*":
        return f"Every {int(minute[2:])} minutes", ""
    if not minute.isdigit():
        return f"On the cron schedule {cron} (UTC)", ""
    local = next_run(cron, now).astimezone(zone)
    if hour == "*" and weekday == "*":
        return f"Every hour at {local.minute:02d} minutes past", ""
    if not hour.isdigit() or not (weekday == "*" or weekday.isdigit()):
        return f"On the cron schedule {cron} (UTC)", ""
    when = "Every day" if weekday == "*" else f"Every {local.strftime('%A')}"
    words = f"{when} at {_clock(local)} ({zone.key})"
    utc = f"{int(hour):02d}:{int(minute):02d} UTC"
    other = _other_half_of_year(local, zone)
    if other is None:
        return words, utc
    clock, in_dst = other
    season = "in daylight saving time" if in_dst else "in standard time"
    return words, f"{utc}; {_clock(clock)} {season}"


def _other_half_of_year(local: datetime, zone: ZoneInfo) -> tuple[datetime, bool] | None:
    """The same UTC time of day as read in the other season (wall clock, whether that is
    daylight saving time), when the zone's offset differs then; None for a zone without DST."""
    for month in (1, 7):
        shifted = datetime(local.year, month, 15, 12, tzinfo=UTC).astimezone(zone)
        offset = shifted.utcoffset()
        if offset is not None and offset != local.utcoffset():
            wall = local.astimezone(UTC).replace(tzinfo=None) + offset
            return wall, bool(shifted.dst())
    return None


def relative(moment: datetime, now: datetime) -> str:
    """`in 8 hours`, `12 minutes ago`, `in less than a minute`, `just now`."""
    seconds = (moment - now).total_seconds()
    future, seconds = seconds > 0, abs(seconds)
    if seconds < 60:
        return "in less than a minute" if future else "just now"
    for size, unit, limit in ((60, "minute", 60), (3600, "hour", 48), (86400, "day", 10**6)):
        amount = int(seconds // size)
        if amount < limit:
            words = f"{amount:,} {unit}{'' if amount == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    return ""  # unreachable: the last unit has no limit


def duration_in_words(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def counts_in_words(counts: dict[str, Any]) -> str:
    """`120 messages checked · 3 updated`: the non-zero counts, each saying what it counts;
    `nothing to do` when every count is zero (unless the run was skipped: its reason says
    why). Text values (a skip's reason) are left out. `to_check` is the total `checked` goes
    to: `1,500 of 6,000 messages checked` while short of it, never a count of its own (a
    finished run's "600 messages to check" read as work left)."""
    parts = []
    total = counts.get("to_check")
    for key, value in counts.items():
        if key == "to_check":
            continue
        if key == "checked" and isinstance(total, int) and isinstance(value, int):
            if 0 <= value < total:
                parts.append(f"{value:,} of {total:,} messages checked")
                continue
        if isinstance(value, int) and not isinstance(value, bool) and value:
            fallback = key.replace("_", " ")
            one, many = COUNT_WORDS.get(key, (fallback, fallback))
            parts.append(f"{value:,} {one if value == 1 else many}")
    if parts:
        return " · ".join(parts)
    if counts.get("skipped"):
        return ""
    return "nothing to do" if any(isinstance(v, int) for v in counts.values()) else ""


def count_notes(counts: dict[str, Any]) -> list[str]:
    """The text values of a summary other than a skip's reason (`list error: ...`)."""
    return [
        f"{key.replace('_', ' ')}: {value}"
        for key, value in counts.items()
        if isinstance(value, str) and value and key != "skipped"
    ]


def progress_of(counts: dict[str, Any]) -> tuple[int, int] | None:
    """(done, total) when a running job publishes both (`checked` of `to_check`)."""
    done, total = counts.get("checked"), counts.get("to_check")
    if isinstance(done, int) and isinstance(total, int) and total > 0:
        return min(done, total), total
    return None


# The line naming the exception (`KeyError: 'sid'`, `sqlalchemy.exc.OperationalError: ...`).
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: \S")


def error_summary(error: str | None) -> str:
    """The line of a traceback that says what went wrong: the last one naming an exception
    (a database error ends in its statement and a "Background on this error" link, which say
    nothing), else its last non-empty line."""
    if not error:
        return ""
    lines = [line.rstrip() for line in error.strip().splitlines() if line.strip()]
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (named or lines or [""])[-1].strip()


# --- Status --------------------------------------------------------------------------------


@dataclass
class Pending:
    """A run of the job waiting in (or taken from) its RQ queue."""

    rq_id: str
    state: str  # "queued" or "started"
    since: datetime | None


@dataclass
class PeriodicJobStatus:
    job: PeriodicJob
    schedule: str
    schedule_detail: str
    next_run: datetime
    next_run_relative: str
    last_run: JobRun | None  # the latest finished run
    running: JobRun | None  # a run in progress (its counts so far)
    # A `running` row whose run is over without having said so (its worker was killed), and
    # why in words: the tick or the next Run now closes it with that reason.
    abandoned: JobRun | None
    abandoned_reason: str
    pending: Pending | None  # queued, not yet picked up by a worker
    # Whether the scheduler holds the job, and whether it runs (None: Redis did not answer).
    registered: bool | None
    scheduler_running: bool | None
    now: datetime

    @property
    def active(self) -> bool:
        """Queued or running: the row polls for its progress."""
        return self.running is not None or self.pending is not None

    def ago(self, moment: datetime | None) -> str:
        return relative(moment, self.now) if moment else ""


def _runs(job: PeriodicJob) -> tuple[JobRun | None, JobRun | None]:
    """(the latest finished run, the latest `running` row) of `job`."""
    latest = db.session.scalars(
        sa.select(JobRun).where(JobRun.name == job.recorded_as).order_by(JobRun.id.desc()).limit(1)
    ).first()
    if latest is None or latest.outcome != JobOutcome.RUNNING:
        return latest, None
    finished = db.session.scalars(
        sa.select(JobRun)
        .where(JobRun.name == job.recorded_as, JobRun.outcome != JobOutcome.RUNNING)
        .order_by(JobRun.id.desc())
        .limit(1)
    ).first()
    return finished, latest


def _started_run_is_over(connection: Any, rq_job: Job) -> bool:
    """Whether a `started` RQ job is in fact over: its worker no longer reports to Redis, or
    the run it recorded was closed (finished, or found abandoned) while RQ still says started."""
    if rq_job.worker_name and worker_gone(connection, rq_job.worker_name):
        return True
    query = sa.select(JobRun.id).where(
        JobRun.rq_job_id == rq_job.id, JobRun.outcome != JobOutcome.RUNNING
    )
    if rq_job.worker_name:
        query = query.where(JobRun.worker_name == rq_job.worker_name)
    if rq_job.started_at is not None:
        query = query.where(JobRun.started_at >= rq_job.started_at)
    return db.session.scalars(query.limit(1)).first() is not None


def pending_run(app: Flask, job: PeriodicJob) -> Pending | None:
    """The job's Run now or scheduled RQ job when it is waiting or started; raises RedisError
    when Redis does not answer."""
    connection = get_redis(app)
    for rq_id in (RUN_NOW_PREFIX + job.id, job.job_id):
        try:
            rq_job = Job.fetch(rq_id, connection=connection)
        except NoSuchJobError:
            continue
        status = rq_job.get_status(refresh=False)
        # A job hash says "queued" even after its queue was emptied: ask the queue itself.
        # (A cron job waiting for its time in the scheduler is "scheduled", not pending.)
        if (
            status == JobStatus.QUEUED
            and connection.lpos(Queue.redis_queue_namespace_prefix + rq_job.origin, rq_id)
            is not None
        ):
            return Pending(rq_id, "queued", rq_job.enqueued_at or rq_job.created_at)
        # A started job is past its timeout only when its worker died without saying so.
        started = rq_job.started_at
        if (
            status == JobStatus.STARTED
            and (started is None or started >= utcnow() - timedelta(seconds=job.timeout + 60))
            and not _started_run_is_over(connection, rq_job)
        ):
            return Pending(rq_id, "started", started or rq_job.enqueued_at)
    return None


def _registered(app: Flask, job: PeriodicJob) -> bool:
    return get_redis(app).zscore(Scheduler.scheduled_jobs_key, job.job_id) is not None


def scheduler_running(app: Flask) -> bool | None:
    """Whether an rq-scheduler process is alive (its instance key, kept by its heartbeat, has
    no death mark); None when Redis does not answer."""
    try:
        connection = get_redis(app)
        prefix = Scheduler.redis_scheduler_namespace_prefix
        for key in connection.scan_iter(match=prefix + "*", count=500):
            if not connection.hexists(key, "death"):
                return True
    except (RedisError, OSError):
        return None
    return False


def periodic_job_status(
    app: Flask,
    job: PeriodicJob,
    now: datetime,
    zone: ZoneInfo,
    scheduler_alive: bool | None | object = _ASK,
) -> PeriodicJobStatus:
    """One job's status; `scheduler_alive` is asked of Redis unless the caller knows it."""
    last, running = _runs(job)
    abandoned, reason = None, ""
    if running is not None:
        # Read only (a GET never writes): the tick or the next Run now closes the row.
        reason = abandoned_reason(running, get_redis(app), utcnow(), zone) or ""
        if reason:
            abandoned, running = running, None
    try:
        pending = pending_run(app, job)
        registered: bool | None = _registered(app, job)
    except (RedisError, OSError):
        pending, registered = None, None
    if pending is not None and pending.state == "started" and running is not None:
        pending = None  # the job-run row tells more
    if pending is not None and abandoned is not None and pending.rq_id == abandoned.rq_job_id:
        pending = None  # the RQ job of the run that died: it runs no more
    words, detail = schedule_in_words(job.cron, zone, now)
    upcoming = next_run(job.cron, now)
    return PeriodicJobStatus(
        job=job,
        schedule=words,
        schedule_detail=detail,
        next_run=upcoming,
        next_run_relative=relative(upcoming, now),
        last_run=last,
        running=running,
        abandoned=abandoned,
        abandoned_reason=reason,
        pending=pending,
        registered=registered,
        scheduler_running=scheduler_running(app) if scheduler_alive is _ASK else scheduler_alive,  # type: ignore[arg-type]
        now=now,
    )


def periodic_job_statuses(app: Flask, now: datetime, zone: ZoneInfo) -> list[PeriodicJobStatus]:
    alive = scheduler_running(app)
    return [periodic_job_status(app, job, now, zone, alive) for job in PERIODIC_JOBS]


# --- Run now -------------------------------------------------------------------------------


class RunRefused(Exception):
    """Run now was refused: `message` says why, `status` is the HTTP status that fits."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def has_worker_for(app: Flask, queue_name: str) -> bool:
    return any(
        queue_name in worker.queue_names() for worker in Worker.all(connection=get_redis(app))
    )


def run_now(
    app: Flask, job: PeriodicJob, now: datetime, describe: Callable[[datetime], str]
) -> Job:
    """Put one run of `job` on its queue for a worker; refused (RunRefused) when a run is
    already queued or running, or when Redis does not answer. `describe` writes a time for
    the refusal (the caller's zone and words).

    A Redis lock around the check and the enqueue, and a fixed job id, keep two clicks at
    once from queueing two runs.
    """
    unavailable = RunRefused(
        f"Redis does not answer, so {job.id} cannot be queued. Nothing was started: "
        "check that Redis is running, then try again.",
        503,
    )
    try:
        connection = get_redis(app)
        lock = connection.lock(
            f"{app.config['REDIS_KEY_PREFIX']}:run-now:{job.id}", timeout=10, blocking_timeout=5
        )
        if not lock.acquire():
            raise RunRefused(f"Someone else is starting {job.id} right now. Try again shortly.")
        try:
            # Rows of runs that died are closed first, with the reason (the tick's rule too):
            # their RQ job no longer counts either.
            zone = ZoneInfo(app.config["APP_TIMEZONE"])
            close_abandoned_runs(connection, zone, name=job.recorded_as)
            _, running = _runs(job)
            pending = pending_run(app, job)
            if pending is not None:
                verb = "queued" if pending.state == "queued" else "running"
                since = f" since {describe(pending.since)}" if pending.since else ""
                raise RunRefused(
                    f"{job.id} is already {verb}{since}: it was not queued again."
                    + _no_worker_note(app, job)
                )
            if running is not None:
                raise RunRefused(
                    f"{job.id} is already running since {describe(running.started_at)}: "
                    "it was not queued again. Wait for it to finish."
                )
            _forget_dead_execution(connection, RUN_NOW_PREFIX + job.id)
            return get_queue(app, job.queue).enqueue(
                job.func,
                job_id=RUN_NOW_PREFIX + job.id,
                job_timeout=job.timeout,
                result_ttl=3600,
                failure_ttl=86400,
                description=f"Run now: {job.description}",
            )
        finally:
            try:
                lock.release()
            except RedisError:
                pass  # expired or Redis gone: it frees itself after its timeout
    except (RedisError, OSError) as exc:
        raise unavailable from exc


def _forget_dead_execution(connection: Any, rq_id: str) -> None:
    """The last Run now's RQ job still says `started` when its worker died: its execution is
    taken out of the started registry before the same job id is queued again, or RQ's cleanup
    of that registry, once the dead execution expires, would fail the new run."""
    try:
        rq_job = Job.fetch(rq_id, connection=connection)
    except NoSuchJobError:
        return
    if rq_job.get_status(refresh=False) == JobStatus.STARTED:
        rq_job.started_job_registry.remove_executions(rq_job)


def _no_worker_note(app: Flask, job: PeriodicJob) -> str:
    if has_worker_for(app, job.queue):
        return ""
    return (
        f" No worker is taking jobs from the {job.queue} queue, so it waits until one starts "
        "(python worker.py worker)."
    )


def queued_message(app: Flask, job: PeriodicJob) -> str:
    """What to tell the person who clicked Run now once it is queued."""
    try:
        note = _no_worker_note(app, job)
    except (RedisError, OSError):
        note = ""
    return f"{job.id} is queued on the {job.queue} queue; its row shows its progress." + note
