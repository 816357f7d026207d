"""Process entry point for the RQ worker (`python worker.py worker`) and the scheduler (`... scheduler`)."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from rq import Worker
from rq_scheduler import Scheduler

from app import create_app
from app.extensions import db, get_redis
from app.jobs import QUEUE_DEFAULT, QUEUES
from app.jobs.schedule import register_periodic_jobs

log = logging.getLogger("broadcaster.worker")
# rq-scheduler calls crontab in a way crontab warns about on every poll; the times are UTC either way.
warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler.utils")


def run_worker(burst: bool, queues: list[str]) -> bool:
    app = create_app()
    with app.app_context():
        # The parent never queries; each forked job opens its own connections.
        db.engine.dispose()
        worker = Worker(queues, connection=get_redis(app))
        return worker.work(burst=burst, logging_level="INFO", with_scheduler=False)


def run_scheduler(interval: int, register_only: bool) -> None:
    app = create_app()
    with app.app_context():
        connection = get_redis(app)
        scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=connection, interval=interval)
        ids = register_periodic_jobs(scheduler)
        log.info("registered periodic jobs: %s", ", ".join(ids))
        if not register_only:
            scheduler.run()


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.process == "scheduler":
        run_scheduler(args.interval, args.register_only)
        return 0
    ok = run_worker(getattr(args, "burst", False), getattr(args, "queues", list(QUEUES)))
    return 0 if ok or getattr(args, "burst", False) else 1


if __name__ == "__main__":
    sys.exit(main())
