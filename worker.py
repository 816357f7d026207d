"""Process entry point for the RQ worker (`python worker.py worker`) and the scheduler (`... scheduler`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import traceback
import warnings

from rq import Worker
from rq_scheduler import Scheduler

from app import create_app
from app.extensions import db, get_redis
from app.jobs import QUEUE_DEFAULT, QUEUES
from app.jobs.schedule import register_periodic_jobs
from app.jobs.shutdown import install_horse_handlers, stop_requested
from app.logs import log_job

log = logging.getLogger("broadcaster.worker")
# rq-scheduler calls crontab in a way crontab warns about on every poll; the times are UTC either way.
warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler.utils")


class GracefulWorker(Worker):
    """RQ's forking worker, with a shutdown the running job takes part in, and a log line a job.

    RQ's own warm shutdown (SIGTERM to this process) waits for the current job, and a work horse
    that gets SIGTERM itself dies at once. A platform sends SIGTERM to every process of the dyno
    and SIGKILL 30 s later, while a drain job may run for minutes. So here the horse turns SIGTERM
    into a stop request the drain job reads between calls (app.jobs.shutdown; a job still running
    SHUTDOWN_GRACE_SECONDS later is stopped with an exception, before SIGKILL), and this process
    passes its own SIGTERM on to the horse (which sits in a process group of its own, so a
    `kill` of this process alone would never reach it). The job then finishes what is in flight,
    gives back the rest and returns; this process exits when it does.
    """

    stopped_on_request = False
    shutdown_grace_seconds = 25.0

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if _stopped_while_starting:
            # RQ's loop checks this before taking its first job.
            self.stopped_on_request = True
            self._stop_requested = True

    def setup_work_horse_signals(self) -> None:
        install_horse_handlers(self.shutdown_grace_seconds)
        if self.stopped_on_request:
            # SIGTERM reached this process after it took the job but before it forked: the
            # horse (a copy of it) starts stopped, so the job returns at once.
            stop_requested.set()

    def handle_warm_shutdown_request(self) -> None:
        self.stopped_on_request = True
        super().handle_warm_shutdown_request()
        if self.horse_pid:
            self.kill_horse(sig=signal.SIGTERM)

    def perform_job(self, job, queue, execution) -> bool:
        started = time.monotonic()
        self._job_error = ""
        ok = super().perform_job(job, queue, execution)
        log_job(
            job_id=job.id,
            func=job.func_name,
            queue=job.origin,
            ok=ok,
            seconds=time.monotonic() - started,
            # RQ keeps the return value on the job once it succeeded (no Redis round trip).
            result=getattr(job, "_result", None) if ok else None,
            error=self._job_error,
        )
        return ok

    def handle_exception(self, job, *exc_info) -> None:
        # The exception's type and message only; the traceback goes to RQ's failed registry.
        self._job_error = "".join(traceback.format_exception_only(*exc_info[:2])).strip()[:500]
        super().handle_exception(job, *exc_info)


class GracefulScheduler(Scheduler):
    """rq-scheduler whose SIGTERM never lands between enqueueing a periodic job and booking its
    next run (which would enqueue it again at the next poll): a stop asked for while jobs are
    being moved to their queues takes effect right after."""

    _moving = False
    _stop = False

    def _install_signal_handlers(self) -> None:
        if _stopped_while_starting:
            self.register_death()
            raise SystemExit(0)

        def stop(signum, frame):
            self._stop = True
            if not self._moving:
                raise SystemExit(0)  # run()'s `finally` removes the lock, registers death

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def enqueue_jobs(self):
        self._moving = True
        try:
            return super().enqueue_jobs()
        finally:
            self._moving = False
            if self._stop:
                raise SystemExit(0)


def run_worker(burst: bool, queues: list[str]) -> int:
    app = create_app()
    with app.app_context():
        # The parent never queries; each forked job opens its own connections.
        db.engine.dispose()
        # No job descriptions in the log: their arguments may be texts (Missive posts).
        worker = GracefulWorker(queues, connection=get_redis(app), log_job_description=False)
        worker.shutdown_grace_seconds = app.config["SHUTDOWN_GRACE_SECONDS"]
        worked = worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])
        if burst or worked or worker.stopped_on_request:
            return 0
        return 1


def run_scheduler(interval: int, register_only: bool) -> None:
    app = create_app()
    with app.app_context():
        connection = get_redis(app)
        scheduler = GracefulScheduler(
            queue_name=QUEUE_DEFAULT, connection=connection, interval=interval
        )
        # Under the scheduler lock, so a second scheduler started by mistake never re-registers
        # a job while the first one is moving it to its queue.
        while not scheduler.acquire_lock():
            time.sleep(0.2)
        try:
            ids = register_periodic_jobs(scheduler)
        finally:
            scheduler.remove_lock()
        log.info("registered periodic jobs: %s", ", ".join(ids))
        if not register_only:
            scheduler.run()


_stopped_while_starting = False


def _stop_while_starting(signum, frame) -> None:
    # Only a flag: an exception raised here could land inside an import and be swallowed.
    global _stopped_while_starting
    _stopped_while_starting = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="process")
    worker = sub.add_parser("worker", help="run an RQ worker (the default)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.add_argument("--queues", nargs="*", default=list(QUEUES), choices=QUEUES)
    scheduler = sub.add_parser("scheduler", help="register periodic jobs, then run rq-scheduler")
    scheduler.add_argument("--interval", type=int, default=5, help="seconds between polls")
    scheduler.add_argument("--register-only", action="store_true")
    args = parser.parse_args(argv)
    # Stopped while still starting (a deploy right after the last one): nothing to finish yet,
    # so it exits 0 as soon as it can; RQ and rq-scheduler take over SIGTERM once they run.
    signal.signal(signal.SIGTERM, _stop_while_starting)
    # Logging is configured by create_app (LOG_FORMAT, LOG_PII).
    if args.process == "scheduler":
        run_scheduler(args.interval, args.register_only)
        return 0
    return run_worker(getattr(args, "burst", False), getattr(args, "queues", list(QUEUES)))


if __name__ == "__main__":
    sys.exit(main())
