"""The periodic jobs, and their idempotent registration with rq-scheduler under fixed ids."""

from __future__ import annotations

from dataclasses import dataclass

from rq_scheduler import Scheduler

from app.jobs import QUEUE_DEFAULT, QUEUE_MAINTENANCE

ID_PREFIX = "periodic-"
# RQ's default (180 s) would kill a daily job with a day's backlog (reconciliation paces its
# reads); an hour is the ceiling for any of them.
DEFAULT_TIMEOUT = 3600


@dataclass(frozen=True)
class PeriodicJob:
    id: str
    func: str
    cron: str  # in UTC
    queue: str
    description: str
    # The name the job records its runs under (`recorded_run(NAME)`) when it is not the id with
    # spaces for dashes: the System page and `flask maintenance list` find its last run by it.
    run_name: str = ""
    timeout: int = DEFAULT_TIMEOUT

    @property
    def job_id(self) -> str:
        return ID_PREFIX + self.id

    @property
    def recorded_as(self) -> str:
        return self.run_name or self.id.replace("-", " ")


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob(
        id="tick",
        func="app.jobs.tick.tick",
        cron="* * * * *",
        queue=QUEUE_DEFAULT,
        description="Every minute: start due sends, release follow-ups and retries, recover claims",
    ),
    PeriodicJob(
        id="retention",
        func="app.jobs.maintenance.apply_retention",
        cron="17 4 * * *",
        queue=QUEUE_MAINTENANCE,
        description="Daily: delete webhook log entries and job runs older than RETENTION_DAYS",
    ),
    PeriodicJob(
        id="undeliverable",
        func="app.jobs.maintenance.exclude_undeliverable",
        cron="27 4 * * *",
        queue=QUEUE_MAINTENANCE,
        description="Daily: exclude numbers whose last 3 messages failed within 30 days, never replied",
        run_name="undeliverable numbers",
    ),
    PeriodicJob(
        id="archive-double-failures",
        func="app.jobs.maintenance.archive_double_failures",
        cron="37 4 * * *",
        queue=QUEUE_MAINTENANCE,
        description="Daily (Missive): archive conversations whose last 2 broadcast messages failed",
    ),
    PeriodicJob(
        id="reconcile-statuses",
        func="app.jobs.maintenance.reconcile_statuses_job",
        cron="43 3 * * *",
        queue=QUEUE_MAINTENANCE,
        description="Daily: fetch the provider status of open messages of the last 7 days",
        run_name="status reconciliation",
    ),
)


def register_periodic_jobs(scheduler: Scheduler) -> list[str]:
    """Make the scheduler hold exactly PERIODIC_JOBS, whatever it held before; returns their ids.

    Each job is cancelled and scheduled again under its fixed id, and periodic jobs no longer in
    the list are removed, so starting the scheduler twice (or two schedulers) never doubles a job.
    """
    wanted = {job.job_id for job in PERIODIC_JOBS}
    for existing in scheduler.get_jobs():
        if existing.id.startswith(ID_PREFIX) and existing.id not in wanted:
            scheduler.cancel(existing)
    for job in PERIODIC_JOBS:
        if job.job_id in scheduler:
            scheduler.cancel(job.job_id)
        scheduler.cron(
            job.cron,
            func=job.func,
            id=job.job_id,
            queue_name=job.queue,
            description=job.description,
            # Never expire: rq-scheduler drops a cron job whose hash is gone when its time comes,
            # so a finished daily job kept for an hour would never run again.
            result_ttl=-1,
            timeout=job.timeout,
            use_local_timezone=False,
        )
    return sorted(wanted)
