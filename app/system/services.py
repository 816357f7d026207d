"""Health and worker status: reachability of the database and Redis, queues, workers, job runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db, get_redis
from app.inbound.services import possible_opt_outs_query
from app.jobs import QUEUES, get_queue
from app.models import JobOutcome, JobRun, utcnow


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


# /healthz answers 503 once the last successful tick is older than this (SPEC 6.1: every minute).
TICK_STALE_AFTER = timedelta(minutes=5)
# A worker whose heartbeat is older than this is listed but not counted as alive.
WORKER_HEARTBEAT_STALE = timedelta(minutes=2)


def check_tick(now: datetime) -> dict[str, Any]:
    """The age of the last successful tick. A database that never ran one (a fresh install) is
    not stale: the scheduler's first tick comes within the minute."""
    try:
        last = db.session.scalar(
            sa.select(JobRun.started_at)
            .where(JobRun.name == "tick", JobRun.outcome == JobOutcome.SUCCESS)
            .order_by(JobRun.started_at.desc())
            .limit(1)
        )
    except SQLAlchemyError as exc:
        db.session.rollback()
        return {"ok": False, "detail": type(exc).__name__, "last_run_at": None, "age_seconds": None}
    if last is None:
        return {"ok": True, "detail": "never ran", "last_run_at": None, "age_seconds": None}
    age = now - last
    stale = age > TICK_STALE_AFTER
    return {
        "ok": not stale,
        "detail": f"no tick for {int(age.total_seconds() // 60)} minutes" if stale else "ok",
        "last_run_at": last.isoformat(),
        "age_seconds": round(age.total_seconds()),
    }


def check_workers(app: Flask, now: datetime) -> dict[str, Any]:
    """Workers registered in Redis and how many have a fresh heartbeat; queue depths."""
    try:
        connection = get_redis(app)
        workers = Worker.all(connection=connection)
        depths = {name: get_queue(app, name).count for name in QUEUES}
    except (RedisError, OSError) as exc:
        return {"workers": {"ok": False, "detail": type(exc).__name__}, "queues": None}
    alive = sum(
        1
        for w in workers
        if w.last_heartbeat is not None
        and now - w.last_heartbeat.replace(tzinfo=w.last_heartbeat.tzinfo or UTC)
        <= WORKER_HEARTBEAT_STALE
    )
    busy = sum(1 for w in workers if w.get_state() == "busy")
    return {
        "workers": {
            "ok": alive > 0,
            "detail": "ok" if alive else "no worker is running",
            "alive": alive,
            "busy": busy,
            "registered": len(workers),
        },
        "queues": depths,
    }


def health_report(app: Flask) -> dict[str, Any]:
    """What /healthz says. 503 (`unavailable`) when the database or Redis does not answer or the
    tick is stale; workers and queues are reported (a deploy restarts workers: no worker for a
    few seconds is normal, and a tick that stops for lack of workers turns it 503)."""
    now = utcnow()
    db_ok, db_detail = check_database()
    redis_ok, redis_detail = check_redis(app)
    tick = check_tick(now) if db_ok else {"ok": False, "detail": "database unavailable"}
    workers = (
        check_workers(app, datetime.now(UTC))
        if redis_ok
        else {"workers": {"ok": False, "detail": "redis unavailable"}, "queues": None}
    )
    return {
        "status": "ok" if db_ok and redis_ok and tick["ok"] else "unavailable",
        "database": {"ok": db_ok, "detail": db_detail},
        "redis": {"ok": redis_ok, "detail": redis_detail},
        "tick": tick,
        **workers,
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
