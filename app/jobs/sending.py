"""Sending jobs: drain the queued messages in batches, and the simulator's delayed statuses."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from rq import Queue
from rq_scheduler import Scheduler

from app.extensions import db, get_redis
from app.jobs import QUEUE_DEFAULT, QUEUE_SENDING, get_queue
from app.jobs.shutdown import stop_requested
from app.models import Contact, MessageStatus, OutboundMessage
from app.sending.engine import claim_size, send_batch
from app.sending.status import Applied, StatusUpdate, apply_status_updates
from app.sending.transports import SimulatorTransport, get_transport
from app.sends.stats import finish_sends, refresh_finished_stats

SEND_JOB = "app.jobs.sending.send_queued"
# A drain job hands over to a fresh one after this long, so no job outlives RQ's timeout and
# a long send is spread over several jobs (and workers) instead of one.
JOB_BUDGET_SECONDS = 120
JOB_TIMEOUT_SECONDS = JOB_BUDGET_SECONDS + 600


def send_queued() -> dict[str, Any]:
    """Claim and send batches of `queued` messages until none are left or the budget is spent.

    Takes no ids: whatever is queued is claimed (SKIP LOCKED), so a lost or duplicated job can
    neither lose nor double a message. Safe to run any number of times at once. Schedules the
    simulator's statuses for what it accepted, and finishes the sends it emptied.

    A deploy's SIGTERM sets `stop_requested` in the work horse (GracefulWorker): no new batch
    is claimed, calls not yet made go back to `queued`, calls in flight are recorded, and the
    job returns within about one read timeout, after topping up the drain jobs for whatever
    it gave back (the next worker picks them up).
    """
    app = current_app._get_current_object()
    started = time.monotonic()
    totals: dict[str, Any] = {"batches": 0}
    sends: set[tuple[int | None, int | None]] = set()
    simulated = isinstance(get_transport(app), SimulatorTransport)
    while True:
        summary = send_batch(app, stop=stop_requested)
        sends |= summary.sends
        if simulated and summary.accepted_ids:
            schedule_simulated_statuses(app, summary.accepted_ids)
        if stop_requested.is_set():
            _add(totals, summary)
            totals["stopped"] = True
            totals["send_jobs_enqueued"] = enqueue_sending(app)
            break
        if not summary.claimed:
            break
        _add(totals, summary)
        if time.monotonic() - started > JOB_BUDGET_SECONDS:
            enqueue_sending(app, force=1)
            break
    if totals["batches"] and not summary.claimed and not stop_requested.is_set():
        # Out of work: a send whose last message just went out is finished now, not at the
        # next tick, so its page settles at once.
        totals["sends_finished"] = finish_sends()
    totals["broadcast_ids"] = sorted({b for b, _ in sends if b})
    totals["campaign_ids"] = sorted({c for _, c in sends if c})
    db.session.remove()
    return totals


def _add(totals: dict[str, Any], summary) -> None:
    if not summary.claimed:
        return
    totals["batches"] += 1
    for key, value in summary.as_dict().items():
        totals[key] = totals.get(key, 0) + value


def _send_jobs_waiting(queue: Queue) -> int:
    # Only jobs not yet started count: a started one may belong to a worker that died, and
    # an extra waiting job costs nothing (it finds nothing left to claim and returns).
    return sum(1 for job in queue.get_jobs() if job.func_name == SEND_JOB)


def enqueue_sending(app: Flask, *, force: int = 0) -> int:
    """Make sure enough drain jobs are waiting for the queued messages; returns how many were
    added. Call it after the commit that queued messages (it reads the database)."""
    queue = get_queue(app, QUEUE_SENDING)
    if force:
        wanted = force
    else:
        queued = db.session.scalar(
            sa.select(sa.func.count()).where(OutboundMessage.status == MessageStatus.QUEUED)
        )
        if not queued:
            return 0
        parallel = app.config["SEND_PARALLEL_JOBS"]
        wanted = min(parallel, math.ceil(queued / claim_size(app))) - _send_jobs_waiting(queue)
    for _ in range(max(0, wanted)):
        queue.enqueue(SEND_JOB, job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=600, failure_ttl=86400)
    return max(0, wanted)


def schedule_simulated_statuses(app: Flask, message_ids: list[int]) -> None:
    """The simulator's callbacks: `sent` and then the final status, a few seconds later."""
    delay = app.config["SIMULATOR_STATUS_DELAY_SECONDS"]
    scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=get_redis(app))
    scheduler.enqueue_in(
        timedelta(seconds=delay), "app.jobs.sending.apply_simulated_statuses", message_ids
    )


def apply_simulated_statuses(message_ids: list[int]) -> dict[str, int]:
    """What a provider's status callbacks would say, applied in bulk through the same path; the
    figures of a finished send it touched are stored again, as the tick would a minute later."""
    rows = db.session.execute(
        sa.select(
            OutboundMessage.id,
            OutboundMessage.provider_sid,
            OutboundMessage.contact_id,
            OutboundMessage.broadcast_id,
            OutboundMessage.campaign_id,
        ).where(OutboundMessage.id.in_(message_ids))
    ).all()
    phones = dict(
        db.session.execute(
            sa.select(Contact.id, Contact.phone).where(Contact.id.in_({r.contact_id for r in rows}))
        ).all()
    )
    updates = []
    for row in rows:
        final, code = SimulatorTransport.final_status(phones.get(row.contact_id, ""))
        for status in ("sent", final):
            updates.append(
                StatusUpdate(
                    status,
                    message_id=row.id,
                    provider_sid=row.provider_sid,
                    error_code=code if status == final else None,
                    error_message="simulated carrier failure" if code and status == final else None,
                )
            )
    changed = sum(outcome is Applied.APPLIED for outcome in apply_status_updates(updates))
    db.session.commit()
    refreshed = refresh_finished_stats(
        broadcast_ids={r.broadcast_id for r in rows if r.broadcast_id},
        campaign_ids={r.campaign_id for r in rows if r.campaign_id},
    )
    return {"messages": len(rows), "updates": changed, "stats_refreshed": refreshed}
