"""Health and worker status: reachability of the database and Redis, queues, workers, job runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db, get_redis
from app.inbound.services import possible_opt_outs_query
from app.jobs import QUEUES, get_queue
from app.models import JobRun


def check_database() -> tuple[bool, str]:
    try:
        db.session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        return False, type(exc).__name__
    return True, "ok"


def check_redis(app: Flask) -> tuple[bool, str]:
    try:
        get_redis(app).ping()
    except (RedisError, OSError) as exc:
        return False, type(exc).__name__
    return True, "ok"


def health_report(app: Flask) -> dict[str, Any]:
    db_ok, db_detail = check_database()
    redis_ok, redis_detail = check_redis(app)
    return {
        "status": "ok" if db_ok and redis_ok else "unavailable",
        "database": {"ok": db_ok, "detail": db_detail},
        "redis": {"ok": redis_ok, "detail": redis_detail},
    }


@dataclass
class QueueStatus:
    name: str
    queued: int
    failed: int


def queue_statuses(app: Flask) -> list[QueueStatus] | None:
    """Depth of every queue, or None when Redis does not answer."""
    try:
        statuses = []
        for name in QUEUES:
            queue = get_queue(app, name)
            statuses.append(QueueStatus(name, queue.count, queue.failed_job_registry.count))
        return statuses
    except (RedisError, OSError):
        return None


def worker_statuses(app: Flask) -> list[dict[str, Any]] | None:
    try:
        workers = Worker.all(connection=get_redis(app))
    except (RedisError, OSError):
        return None
    return [
        {
            "name": w.name,
            "state": w.get_state(),
            "queues": ", ".join(w.queue_names()),
            "last_heartbeat": w.last_heartbeat,
        }
        for w in workers
    ]


def job_runs_query(name: str = "") -> sa.Select[tuple[JobRun]]:
    query = sa.select(JobRun).order_by(JobRun.id.desc())
    if name:
        query = query.where(JobRun.name == name)
    return query


# Where the possible opt-outs are listed: the System page (20 a page) and the overview (5).
OPT_OUT_LISTS = {
    "system": ("system-opt-outs-list", 20),
    "dashboard": ("dashboard-opt-outs-list", 5),
}


def possible_opt_outs_context(where: str = "system", page: int = 1) -> dict[str, Any]:
    """The possible opt-outs list as one of its two places shows it."""
    target, per_page = OPT_OUT_LISTS[where]
    opt_outs = db.paginate(possible_opt_outs_query(), page=page, per_page=per_page, error_out=False)
    return dict(opt_outs=opt_outs, opt_outs_where=where, opt_outs_target=target)
