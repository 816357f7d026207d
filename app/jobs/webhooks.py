"""The status-callback applier: a job a webhook asks for after storing a callback, at most one
per moment, that applies the inbox in bulk. The tick sweeps the inbox too, so a lost nudge or
job only delays a status (app/webhooks/inbox.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, current_app
from redis.exceptions import RedisError

from app.extensions import db, get_redis
from app.jobs import QUEUE_SENDING, get_queue
from app.webhooks.inbox import apply_pending_callbacks

log = logging.getLogger(__name__)
APPLY_JOB = "app.jobs.webhooks.apply_status_callbacks"
# Callbacks accepted within one window are applied together by one job, which runs once the
# window has closed: about 0.5 s from a callback to its status, and at most two jobs a second
# however many callbacks arrive.
WINDOW_MS = 500
# While a job waits for a free worker, later windows do not add more jobs (bounded, in case
# the waiting job was lost with Redis).
QUEUED_TTL_SECONDS = 60
# A job that finds rows busy (a worker was recording results) looks again this many times.
BUSY_PASSES = 5
# After Redis failed, a web process stops asking it for this long: a Redis that hangs would
# otherwise hold every callback for its connect timeout. The tick applies what piles up.
REDIS_BACKOFF_SECONDS = 5.0
_warned_at = 0.0


def _keys(app: Flask) -> tuple[str, str]:
    prefix = app.config["REDIS_KEY_PREFIX"]
    return f"{prefix}:status-callbacks:window", f"{prefix}:status-callbacks:queued"


def nudge_status_applier(app: Flask) -> None:
    """After the commit that stored a callback: open an apply window if none is open, and make
    sure a job will apply it once the window closes. One Redis round trip in the usual case
    (a window already open). Redis down: logged (once a minute) and not asked again for a few
    seconds; the tick applies the callbacks instead."""
    global _warned_at
    if time.monotonic() < app.extensions.get("status_nudge_paused_until", 0.0):
        return
    window, queued = _keys(app)
    try:
        redis = get_redis(app)
        if redis.set(window, "1", nx=True, px=WINDOW_MS) and redis.set(
            queued, "1", nx=True, ex=QUEUED_TTL_SECONDS
        ):
            get_queue(app, QUEUE_SENDING).enqueue(
                APPLY_JOB, at_front=True, job_timeout=300, result_ttl=60, failure_ttl=86400
            )
    except RedisError as exc:
        app.extensions["status_nudge_paused_until"] = time.monotonic() + REDIS_BACKOFF_SECONDS
        if time.monotonic() - _warned_at > 60:
            _warned_at = time.monotonic()
            log.warning("status callbacks wait for the tick: cannot reach Redis: %s", exc)


def apply_status_callbacks() -> dict[str, Any]:
    """Apply the pending status callbacks in bulk. Waits for the current window to close
    first: every request that found it open had committed its callback before looking, so one
    pass after it closes sees them all. Safe to run twice or at once (one applier at a time,
    in the database)."""
    app = current_app._get_current_object()
    window, queued = _keys(app)
    redis = get_redis(app)
    redis.delete(queued)  # windows from now on may ask for another job
    remaining_ms = redis.pttl(window)
    if remaining_ms > 0:
        time.sleep(min(remaining_ms, 2 * WINDOW_MS) / 1000 + 0.01)
    totals = apply_pending_callbacks()
    passes = 1
    while totals["busy"] and passes < BUSY_PASSES:
        time.sleep(0.2)
        counts = apply_pending_callbacks()
        totals = {k: (v if k in ("busy", "waiting") else totals[k] + v) for k, v in counts.items()}
        passes += 1
    db.session.remove()
    return {**totals, "passes": passes}
