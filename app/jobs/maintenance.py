"""Daily maintenance (SPEC 8a): each a plain RQ job listed in PERIODIC_JOBS, recorded in job runs
with its counts, safe to run twice or concurrently, and resumable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job

from app.api.idempotency import KEEP as IDEMPOTENCY_KEEP
from app.extensions import db, get_redis
from app.jobs import QUEUE_MAINTENANCE, get_queue, missive_upkeep
from app.jobs.runs import recorded_run
from app.jobs.schedule import DEFAULT_TIMEOUT
from app.models import (
    FAILED_STATUSES,
    ApiIdempotencyKey,
    Broadcast,
    Campaign,
    Contact,
    ExcludeReason,
    InboundMessage,
    JobRun,
    OutboundMessage,
    WebhookEvent,
    utcnow,
)
from app.sending.contacts import exclude_contacts

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
    """Delete webhook log entries and job runs older than RETENTION_DAYS (SPEC 8a), and the API's
    idempotency keys older than a day.

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
        # The API's idempotency keys are kept a day (app/api/idempotency.py), whatever the above.
        run.counts["idempotency_keys_deleted"] = _delete_in_batches(
            ApiIdempotencyKey, ApiIdempotencyKey.created_at, utcnow() - IDEMPOTENCY_KEEP
        )
    return run.counts


RECONCILE_RUN = "status reconciliation"
RECONCILE_JOB = "app.jobs.maintenance.reconcile_statuses_job"
# While an on-demand check is queued or running, clicking again queues nothing more.
_WAITING = ("queued", "started", "deferred", "scheduled")


def send_run_name(send: Broadcast | Campaign) -> str:
    """What an on-demand reconciliation of one send is recorded as (not the daily run's name,
    so the System page's "last run" of the daily job stays the daily one)."""
    kind = "broadcast" if isinstance(send, Broadcast) else "campaign"
    return f"{RECONCILE_RUN}: {kind} {send.id}"


def send_reconcile_job_id(send: Broadcast | Campaign) -> str:
    kind = "broadcast" if isinstance(send, Broadcast) else "campaign"
    return f"reconcile-{kind}-{send.id}"


def enqueue_send_reconcile(send: Broadcast | Campaign, app: Flask | None = None) -> str:
    """Queue the reconciliation of one send's open messages (both transports) on the
    maintenance queue; returns the RQ job id. One at a time per send: while its job is queued
    or running, the same id comes back and nothing more is queued. Raises `redis.RedisError`
    when Redis is down (the caller says so; nothing was queued)."""
    app = app or current_app._get_current_object()
    queue = get_queue(app, QUEUE_MAINTENANCE)
    job_id = send_reconcile_job_id(send)
    try:
        status = Job.fetch(job_id, connection=queue.connection).get_status(refresh=False)
    except NoSuchJobError:
        status = None
    if status is not None and str(getattr(status, "value", status)) in _WAITING:
        return job_id
    key = "broadcast_id" if isinstance(send, Broadcast) else "campaign_id"
    queue.enqueue(
        RECONCILE_JOB,
        kwargs={key: send.id},
        job_id=job_id,
        job_timeout=DEFAULT_TIMEOUT,
        result_ttl=86400,
        failure_ttl=86400,
        description=send_run_name(send),
    )
    return job_id


def send_reconcile_waiting(send: Broadcast | Campaign, app: Flask) -> bool:
    """Whether the send's on-demand job is queued or running; raises RedisError when Redis
    cannot tell."""
    try:
        job = Job.fetch(send_reconcile_job_id(send), connection=get_redis(app))
    except NoSuchJobError:
        return False
    return str(getattr(job.get_status(), "value", job.get_status())) in _WAITING


def last_send_reconcile(send: Broadcast | Campaign) -> JobRun | None:
    return db.session.scalars(
        sa.select(JobRun)
        .where(JobRun.name == send_run_name(send))
        .order_by(JobRun.started_at.desc(), JobRun.id.desc())
        .limit(1)
    ).first()


def reconcile_statuses_job(
    broadcast_id: int | None = None, campaign_id: int | None = None
) -> dict[str, Any]:
    """Fetch the provider status of the open messages of the last 7 days (SPEC 8a), daily or
    for one send: Twilio-sent ones by SID, Missive-sent ones through Twilio's Messages list.
    Progress is published on the job run after every committed chunk; a run killed halfway is
    continued by the next one (the cursors of `app.sending.reconcile`)."""
    from app.sending.reconcile import reconcile_statuses

    send: Broadcast | Campaign | None = None
    if broadcast_id is not None:
        send = db.session.get(Broadcast, broadcast_id)
    elif campaign_id is not None:
        send = db.session.get(Campaign, campaign_id)
    if send is not None:
        name = send_run_name(send)
    elif broadcast_id is not None or campaign_id is not None:
        kind = "broadcast" if broadcast_id is not None else "campaign"
        name = f"{RECONCILE_RUN}: {kind} {broadcast_id or campaign_id}"
    else:
        name = RECONCILE_RUN
    with recorded_run(name) as run:
        if (broadcast_id is not None or campaign_id is not None) and send is None:
            run.skip("no such send")
        else:
            counts = reconcile_statuses(
                current_app._get_current_object(),
                send=send,
                on_progress=lambda counts: run.progress(**counts),
            )
            skipped = counts.pop("skipped", None)
            run.counts.update(counts)
            if skipped:
                run.skip(skipped)
    return run.counts


UNDELIVERABLE_RUN = 3  # this many failures in a row...
UNDELIVERABLE_DAYS = 30  # ...all within this many days
UNDELIVERABLE_BATCH = 500


def undeliverable_contacts_select(now: Any) -> sa.Select:
    """Contacts (not yet excluded) whose last 3 attempted outbound messages are all `failed` or
    `undelivered`, all created within the last 30 days, and who never replied.

    "Never replied" means no inbound message from them at all apart from keywords (STOP, START,
    HELP): any other text, ever, shows the number reaches a person. Every error code counts,
    temporary ones (30003, 30008) included; 30005/30006 already exclude at once when the status
    arrives. One set-based query: a window function ranks each contact's recent messages.
    """
    cutoff = now - timedelta(days=UNDELIVERABLE_DAYS)
    failing = (
        sa.select(OutboundMessage.contact_id)
        .where(OutboundMessage.status.in_(FAILED_STATUSES), OutboundMessage.created_at >= cutoff)
        .distinct()
    )
    ranked = (
        sa.select(
            OutboundMessage.contact_id,
            OutboundMessage.status,
            sa.func.row_number()
            .over(
                partition_by=OutboundMessage.contact_id,
                order_by=(OutboundMessage.created_at.desc(), OutboundMessage.id.desc()),
            )
            .label("rank"),
        )
        .where(
            OutboundMessage.contact_id.in_(failing),
            OutboundMessage.status.in_(missive_upkeep.ATTEMPTED),
            OutboundMessage.created_at >= cutoff,
        )
        .subquery()
    )
    replied = (
        sa.select(InboundMessage.id)
        .where(
            sa.or_(InboundMessage.contact_id == Contact.id, InboundMessage.phone == Contact.phone),
            InboundMessage.keyword.is_(None),
        )
        .exists()
    )
    return (
        sa.select(ranked.c.contact_id)
        .join(Contact, Contact.id == ranked.c.contact_id)
        .where(ranked.c.rank <= UNDELIVERABLE_RUN, Contact.excluded.is_(False), ~replied)
        .group_by(ranked.c.contact_id, Contact.id, Contact.phone)
        .having(
            sa.func.count() == UNDELIVERABLE_RUN,
            # A filtered count, not bool_and: SQLite (development) has no bool_and.
            sa.func.count().filter(ranked.c.status.in_(FAILED_STATUSES)) == UNDELIVERABLE_RUN,
        )
        .order_by(ranked.c.contact_id)
    )


def exclude_undeliverable() -> dict[str, Any]:
    """Exclude (reason `undeliverable`, audited, pending messages cancelled) every contact that
    `undeliverable_contacts_select` finds (SPEC 8a).

    Committed a batch of contacts at a time, so a run killed halfway keeps what it did and the
    next run finds only the rest; two runs at once exclude each contact once (the update only
    touches contacts not yet excluded, and only those it changed are audited).
    Then, with the missive transport and MISSIVE_UNDELIVERABLE_LABEL_ID, each such number's
    conversation gets one note with that label, closing it (`missive_upkeep`): numbers excluded
    by an earlier run whose note failed, or by a carrier error (30005/30006), included.
    """
    with recorded_run("undeliverable numbers") as run:
        ids = list(db.session.scalars(undeliverable_contacts_select(utcnow())))
        db.session.commit()
        run.progress(found=len(ids), excluded=0)
        excluded = 0
        for start in range(0, len(ids), UNDELIVERABLE_BATCH):
            excluded += exclude_contacts(
                ids[start : start + UNDELIVERABLE_BATCH],
                ExcludeReason.UNDELIVERABLE,
                f"its last {UNDELIVERABLE_RUN} messages failed or were undelivered within "
                f"{UNDELIVERABLE_DAYS} days and it never replied",
            )
            db.session.commit()
            run.progress(excluded=excluded)
        run.counts.update(
            missive_upkeep.post_undeliverable_notes(
                current_app._get_current_object(),
                utcnow(),
                on_progress=lambda counts: run.progress(**counts),
            )
        )
    return run.counts


def archive_double_failures() -> dict[str, Any]:
    """Missive transport: a conversation whose last 2 broadcast messages within 7 days failed
    gets MISSIVE_ARCHIVE_LABEL_ID, a note, and is closed, once (SPEC 8a); see `missive_upkeep`.
    Without the missive transport or the label the run is recorded as skipped, saying why."""
    with recorded_run("archive double failures") as run:
        counts = missive_upkeep.archive_double_failures(
            current_app._get_current_object(),
            utcnow(),
            on_progress=lambda counts: run.progress(**counts),
        )
        skipped = counts.pop("skipped", None)
        run.counts.update(counts)
        if skipped:
            run.skip(skipped)
    return run.counts
