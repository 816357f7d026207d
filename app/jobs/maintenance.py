"""Daily maintenance (SPEC 8a): each a plain RQ job listed in PERIODIC_JOBS, recorded in job runs
with its counts, safe to run twice or concurrently, and resumable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.jobs.runs import recorded_run
from app.models import JobRun, WebhookEvent, utcnow

RETENTION_BATCH = 5000


def _delete_in_batches(model: Any, stamp: Any, cutoff: Any, *extra: Any) -> int:
    """Delete rows older than `cutoff` a bounded batch per transaction; returns how many.

    Each batch locks its rows with SKIP LOCKED, so two runs at once split the work instead of
    waiting on each other, and a run killed halfway has committed every batch before the kill.
    """
    total = 0
    while True:
        batch = (
            sa.select(model.id)
            .where(stamp < cutoff, *extra)
            .order_by(model.id)
            .limit(RETENTION_BATCH)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        deleted = (
            db.session.execute(
                sa.delete(model)
                .where(model.id.in_(batch))
                .execution_options(synchronize_session=False)
            ).rowcount
            or 0
        )
        db.session.commit()
        total += deleted
        if deleted < RETENTION_BATCH:
            return total


def apply_retention() -> dict[str, Any]:
    """Delete webhook log entries and job runs older than RETENTION_DAYS (SPEC 8a).

    In bounded batches, each committed, so it is resumable and safe to run twice or
    concurrently; this run's own row is never deleted.
    """
    with recorded_run("retention") as run:
        cutoff = utcnow() - timedelta(days=current_app.config["RETENTION_DAYS"])
        run.counts["webhook_events_deleted"] = _delete_in_batches(
            WebhookEvent, WebhookEvent.received_at, cutoff
        )
        run.counts["job_runs_deleted"] = _delete_in_batches(
            JobRun, JobRun.started_at, cutoff, JobRun.id != run.run_id
        )
    return run.counts


def reconcile_statuses_job(
    broadcast_id: int | None = None, campaign_id: int | None = None
) -> dict[str, Any]:
    """Fetch the provider status of open Twilio messages of the last 7 days (SPEC 8a), daily or
    for one send; a transport other than Twilio is recorded as skipped (Missive-sent messages
    are matched through Twilio's list by a later job)."""
    from app.models import Broadcast, Campaign
    from app.sending.reconcile import reconcile_statuses

    name = "status reconciliation"
    send = None
    if broadcast_id is not None:
        send = db.session.get(Broadcast, broadcast_id)
    elif campaign_id is not None:
        send = db.session.get(Campaign, campaign_id)
    with recorded_run(name) as run:
        if (broadcast_id is not None or campaign_id is not None) and send is None:
            run.skip("no such send")
        else:
            counts = reconcile_statuses(current_app._get_current_object(), send=send)
            skipped = counts.pop("skipped", None)
            run.counts.update(counts)
            if skipped:
                run.skip(skipped)
    return run.counts
