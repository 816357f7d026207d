"""Campaign jobs: find or create a campaign's Missive label (SPEC 5), and label the conversations
the campaign reached before its label was ready. Enqueued after the commit; never in the way of
sending (the drafts simply go out without the label until it is ready).

A campaign's `label_state` says where its label is: "pending" (this job has not found or made it
yet), "ready" (`missive_label_ids` holds it: the engine puts it on every draft), or "failed"
(`label_error` says why, in words for the campaign page). A failure Missive may get over (a 429,
a 5xx, no connection) is retried with a delay, `label_attempts` counting; a refusal (any other
4xx) or the last attempt uses up the attempts, and the tick never tries it again. Without the
Missive transport labels cannot be applied at all: the label is "failed" with that reason and
0 attempts, and the tick picks it up again once the transport is Missive.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from app.extensions import db, get_redis
from app.inbound.mirror import LabelData, upsert_labels
from app.integrations import ProviderError
from app.integrations.missive import MissiveClient
from app.jobs import QUEUE_DEFAULT, get_queue
from app.models import (
    Campaign,
    CampaignStatus,
    MessageStatus,
    MissiveLabel,
    OutboundMessage,
    Setting,
    utcnow,
)
from app.sending.transports import missive_client

log = logging.getLogger(__name__)

LABEL_JOB = "app.jobs.campaigns.ensure_campaign_label"
BACKFILL_JOB = "app.jobs.campaigns.apply_campaign_label"
PENDING, READY, FAILED = "pending", "ready", "failed"

# Waits before attempt 2, 3, …: about two hours in all before giving up.
LABEL_BACKOFF_SECONDS = (60, 120, 300, 600, 900, 1800, 3600)
LABEL_MAX_ATTEMPTS = len(LABEL_BACKOFF_SECONDS) + 1
MIN_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 3600
# A second run while one holds the lock comes back this much later.
BUSY_RETRY_SECONDS = 30
LOCK_SECONDS = 300
# The tick's catch-up (Redis was down at save time, a delayed retry was lost): campaigns
# scheduled within this long, sending, or sent this recently.
LOOKAHEAD = timedelta(hours=2)
RECENTLY_SENT = timedelta(days=1)
CATCH_UP_LIMIT = 100
# How long an enqueued label job counts as on its way: the tick adds none meanwhile.
MARKER_SECONDS = 600

# Labelling the conversations reached before the label was ready.
BACKFILL_KEY = "campaign-label-backfill:"  # Setting key: campaign-label-backfill:<campaign id>
# A worker's clock may be a little off ours, and a claim screened just before the label was
# ready carries no label: conversations claimed this long after it are labelled again too.
BACKFILL_MARGIN = timedelta(seconds=30)
BACKFILL_CHUNK = 100  # posts per job run (about two minutes of Missive's pace)
BACKFILL_WAIT_SECONDS = 30  # while messages claimed before the label are still being sent
BACKFILL_MAX_WAITS = 40
BACKFILL_MAX_RETRIES = 10


# -- enqueueing --------------------------------------------------------------------------------
def _marker(app: Flask, campaign_id: int) -> str:
    return f"{app.config['REDIS_KEY_PREFIX']}:campaign-label:{campaign_id}"


def enqueue_campaign_label(campaign_id: int, app: Flask | None = None) -> bool:
    """After the commit that created or edited the campaign: queue its label job now, when its
    label is pending or failed (False when there is nothing to do). Raises RedisError when Redis
    is down, so the caller may say so: the campaign is saved, and the tick enqueues the job
    again once Redis is back."""
    app = app or current_app._get_current_object()
    state = db.session.scalar(sa.select(Campaign.label_state).where(Campaign.id == campaign_id))
    if state not in (PENDING, FAILED):
        return False
    get_redis(app).set(_marker(app, campaign_id), "1", ex=MARKER_SECONDS)
    get_queue(app, QUEUE_DEFAULT).enqueue(
        LABEL_JOB, campaign_id, result_ttl=3600, failure_ttl=86400
    )
    return True


def _enqueue_later(app: Flask, func: str, campaign_id: int, seconds: int) -> None:
    """The job again in `seconds` (rq-scheduler moves it to the default queue then), or now."""
    try:
        if func == LABEL_JOB:  # the tick adds no label job while this one is on its way
            get_redis(app).set(_marker(app, campaign_id), "1", ex=seconds + MARKER_SECONDS)
        if seconds <= 0:
            get_queue(app, QUEUE_DEFAULT).enqueue(
                func, campaign_id, result_ttl=3600, failure_ttl=86400
            )
            return
        Scheduler(queue_name=QUEUE_DEFAULT, connection=get_redis(app)).enqueue_in(
            timedelta(seconds=seconds), func, campaign_id, job_result_ttl=3600
        )
    except RedisError as exc:
        # The state is committed: the tick's catch-up enqueues it again.
        log.warning("could not schedule %s for campaign %s: %s", func, campaign_id, exc)


def labels_unavailable(config: dict[str, Any]) -> str | None:
    """Why this app cannot apply Missive labels at all, in words for the campaign page; None
    when it can (missive transport, a token and an organization)."""
    transport = config["TRANSPORT"]
    if transport != "missive":
        return (
            "Not applied: Missive labels need the Missive transport, and this app sends "
            f"through {'the simulator' if transport == 'simulator' else transport.title()} "
            f"(TRANSPORT={transport}). The campaign sends without a label."
        )
    if not config["MISSIVE_API_TOKEN"]:
        return (
            "Not applied: MISSIVE_API_TOKEN is not set, so the label cannot be found or created "
            "in Missive. The campaign sends without a label."
        )
    if not config["MISSIVE_ORGANIZATION_ID"]:
        return (
            "Not applied: MISSIVE_ORGANIZATION_ID is not set (Missive's shared labels belong to "
            "an organization). The campaign sends without a label."
        )
    return None


def _labels_wanted() -> sa.ColumnElement[bool]:
    return sa.and_(
        Campaign.missive_label_name.is_not(None),
        sa.or_(
            Campaign.label_state == PENDING,
            sa.and_(Campaign.label_state == FAILED, Campaign.label_attempts < LABEL_MAX_ATTEMPTS),
        ),
    )


def enqueue_pending_labels(app: Flask, now: datetime | None = None) -> int:
    """The tick's part: enqueue the label job of each campaign scheduled soon, sending, or just
    sent whose label is pending or may still be retried, unless one is already on its way (a
    Redis marker per campaign, set for as long as an enqueued or delayed job takes to run).
    Without the Missive transport, pending labels are marked failed with the reason instead.
    Returns how many jobs it enqueued. Commits."""
    now = now or utcnow()
    reason = labels_unavailable(app.config)
    if reason is not None:
        db.session.execute(
            sa.update(Campaign)
            .where(Campaign.missive_label_name.is_not(None), Campaign.label_state == PENDING)
            .values(label_state=FAILED, label_error=reason)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return 0
    soon = sa.or_(
        sa.and_(Campaign.status == CampaignStatus.SCHEDULED, Campaign.run_at <= now + LOOKAHEAD),
        Campaign.status == CampaignStatus.SENDING,
        sa.and_(Campaign.status == CampaignStatus.SENT, Campaign.started_at >= now - RECENTLY_SENT),
    )
    ids = db.session.scalars(
        sa.select(Campaign.id)
        .where(_labels_wanted(), soon)
        .order_by(Campaign.id)
        .limit(CATCH_UP_LIMIT)
    ).all()
    enqueued = 0
    try:
        redis = get_redis(app)
        queue = get_queue(app, QUEUE_DEFAULT)
        for campaign_id in ids:
            if redis.set(_marker(app, campaign_id), "1", nx=True, ex=MARKER_SECONDS):
                queue.enqueue(LABEL_JOB, campaign_id, result_ttl=3600, failure_ttl=86400)
                enqueued += 1
    except RedisError as exc:
        log.warning("could not enqueue label jobs: %s", exc)
    return enqueued


# -- the label job -----------------------------------------------------------------------------
def _label_client(app: Flask) -> MissiveClient:
    # A 429 is not waited out in the worker: the job comes back when Retry-After says.
    return missive_client(app, max_429_waits=0)


def _mirrored(name: str, parent: str | None) -> str | None:
    """A mirrored label with this name (case-insensitive), one under `parent` first."""
    order = [MissiveLabel.id]
    if parent:
        order.insert(0, sa.case((MissiveLabel.parent_missive_id == parent, 0), else_=1))
    return db.session.scalar(
        sa.select(MissiveLabel.missive_id)
        .where(sa.func.lower(MissiveLabel.name) == name.lower())
        .order_by(*order)
        .limit(1)
    )


def _in_missive(labels: list[dict[str, Any]], name: str, parent: str | None) -> dict | None:
    """A Missive label with this name (case-insensitive), one under `parent` first."""
    matching = [
        label for label in labels if str(label.get("name") or "").casefold() == name.casefold()
    ]
    matching.sort(key=lambda label: 0 if parent and label.get("parent") == parent else 1)
    return matching[0] if matching else None


def _find_or_create(app: Flask, name: str, parent: str | None) -> tuple[str, bool]:
    """The label's Missive id, listing Missive's labels first so that running twice never makes
    two; mirrored, so later campaigns find it without asking Missive. Raises ProviderError."""
    client = _label_client(app)
    label = _in_missive(client.shared_labels(), name, parent)
    created = label is None
    if label is None:
        label = client.create_shared_label(name, parent)
    missive_id = str(label["id"])
    upsert_labels(
        (LabelData(missive_id, str(label.get("name") or name), label.get("parent") or None),)
    )
    return missive_id, created


def _retryable(exc: ProviderError) -> bool:
    return exc.phase != "answered" or exc.http_status == 429 or (exc.http_status or 0) >= 500


def _in_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def _problem(exc: ProviderError) -> str:
    """What went wrong, for a person."""
    if exc.http_status == 429:
        return "Missive is rate limiting us (429)"
    if exc.phase == "not_sent":
        return f"Missive could not be reached ({exc.message})"
    if exc.phase == "maybe_sent":
        return f"Missive did not answer in time ({exc.message})"
    return f"Missive answered with an error (HTTP {exc.http_status}: {exc.message})"


def _retry_delay(exc: ProviderError, attempt: int) -> int:
    if exc.http_status == 429 and exc.retry_after:
        seconds = math.ceil(exc.retry_after)  # Retry-After, as Missive asks
    else:
        seconds = LABEL_BACKOFF_SECONDS[min(attempt, len(LABEL_BACKOFF_SECONDS)) - 1]
    return max(MIN_RETRY_SECONDS, min(MAX_RETRY_SECONDS, seconds))


def _current(campaign_id: int, name: str) -> Campaign | None:
    """The campaign, row-locked, if its label is still `name` and still wanted."""
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True, with_for_update=True)
    if (
        campaign is None
        or campaign.missive_label_name != name
        or campaign.label_state not in (PENDING, FAILED)
    ):
        return None
    return campaign


def ensure_campaign_label(campaign_id: int) -> dict[str, Any]:
    """Find the campaign's label among mirrored labels, else among Missive's (listed first, so a
    job run twice never creates two), else create it under MISSIVE_CAMPAIGN_PARENT_LABEL_ID;
    mark it ready for the engine and, when the campaign already sent messages without it, queue
    the labelling of those conversations. A 429, 5xx or connection error is recorded on the
    campaign ("failed", with when it is retried) and retried with a delay; another 4xx is final.
    Safe to run twice or at once (a Redis lock per campaign). Commits."""
    app = current_app._get_current_object()
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or not campaign.missive_label_name:
        return {"skipped": "no label asked"}
    if campaign.label_state not in (PENDING, FAILED):
        return {"skipped": f"label {campaign.label_state}"}
    if campaign.label_state == FAILED and campaign.label_attempts >= LABEL_MAX_ATTEMPTS:
        return {"skipped": "given up"}
    name = campaign.missive_label_name
    reason = labels_unavailable(app.config)
    if reason is not None:
        campaign.label_state, campaign.label_error = FAILED, reason
        db.session.commit()
        return {"failed": reason}

    parent = app.config["MISSIVE_CAMPAIGN_PARENT_LABEL_ID"] or None
    redis = get_redis(app)
    lock = f"{_marker(app, campaign_id)}:lock"
    if not redis.set(lock, "1", nx=True, ex=LOCK_SECONDS):
        _enqueue_later(app, LABEL_JOB, campaign_id, BUSY_RETRY_SECONDS)
        return {"skipped": "another run is in progress"}
    db.session.commit()  # end the read: no transaction stays open over Missive's answers
    try:
        found, created, error = _mirrored(name, parent), False, None
        if found is None:
            try:
                found, created = _find_or_create(app, name, parent)
            except ProviderError as exc:
                db.session.rollback()
                error = exc
        if error is not None:
            return _record_failure(app, campaign_id, name, error)
        return _record_ready(app, campaign_id, name, found, created)
    finally:
        redis.delete(lock)


def _record_ready(
    app: Flask, campaign_id: int, name: str, missive_id: str, created: bool
) -> dict[str, Any]:
    campaign = _current(campaign_id, name)
    if campaign is None:
        # Edited meanwhile (another name, or none): the label mirrored above stays for later.
        db.session.commit()
        _enqueue_later(app, LABEL_JOB, campaign_id, 0)
        return {"skipped": "the label changed meanwhile", "label": missive_id}
    ready_at = utcnow()
    campaign.label_state, campaign.missive_label_ids = READY, [missive_id]
    campaign.label_error = None
    backfill = campaign.started_at is not None
    if backfill:
        # Messages claimed before this commit went out without the label.
        db.session.merge(
            Setting(
                key=f"{BACKFILL_KEY}{campaign_id}",
                value={
                    "label_ids": [missive_id],
                    "ready_at": ready_at.isoformat(),
                    "after": "",
                    "applied": 0,
                    "failed": 0,
                    "waits": 0,
                    "retries": 0,
                    "done": False,
                },
            )
        )
    db.session.commit()
    if backfill:
        _enqueue_later(app, BACKFILL_JOB, campaign_id, int(BACKFILL_MARGIN.total_seconds()))
    return {"ready": missive_id, "created": created, "backfill": backfill}


def _record_failure(app: Flask, campaign_id: int, name: str, exc: ProviderError) -> dict:
    campaign = _current(campaign_id, name)
    if campaign is None:
        db.session.commit()
        _enqueue_later(app, LABEL_JOB, campaign_id, 0)
        return {"skipped": "the label changed meanwhile"}
    attempt = campaign.label_attempts + 1
    campaign.label_state = FAILED
    delay = None
    if not _retryable(exc):
        campaign.label_attempts = max(attempt, LABEL_MAX_ATTEMPTS)  # final: the tick skips it
        campaign.label_error = (
            f"Missive refused the label “{name}” (HTTP {exc.http_status}: "
            f"{exc.message}); it is not retried. The campaign sends without a label."
        )
    elif attempt >= LABEL_MAX_ATTEMPTS:
        campaign.label_attempts = attempt
        campaign.label_error = (
            f"Gave up after {attempt} attempts: {_problem(exc)}. "
            "The campaign sends without a label."
        )
    else:
        campaign.label_attempts = attempt
        delay = _retry_delay(exc, attempt)
        campaign.label_error = f"{_problem(exc)}; retrying in {_in_words(delay)}."
    error = campaign.label_error
    db.session.commit()
    if delay is not None:
        _enqueue_later(app, LABEL_JOB, campaign_id, delay)
    return {"failed": error, "attempt": attempt, "retry_in": delay}


# -- labelling the conversations reached before the label was ready ---------------------------
def label_backfill(campaign_id: int) -> dict[str, Any] | None:
    """Progress of labelling the conversations the campaign texted before its label was ready:
    `applied`, `failed`, `done` (None when there was nothing to label afterwards)."""
    setting = db.session.get(Setting, f"{BACKFILL_KEY}{campaign_id}")
    return dict(setting.value) if setting is not None else None


def _save(setting: Setting, **changes: Any) -> None:
    setting.value = {**setting.value, **changes}  # a new dict: JSON columns see only assignments
    db.session.commit()


def apply_campaign_label(campaign_id: int) -> dict[str, Any]:
    """Label the Missive conversations of messages claimed before the campaign's label was ready
    (they went out without it): one post with `add_shared_labels` per conversation, at Missive's
    shared pace, in conversation order from a cursor kept in a Setting row, so a job that stops
    anywhere (a deploy, a 429, an outage) resumes where it was and labels no conversation twice.
    Waits first for such messages still being sent (their conversation is not known yet).
    Commits after each post."""
    app = current_app._get_current_object()
    setting = db.session.get(Setting, f"{BACKFILL_KEY}{campaign_id}")
    campaign = db.session.get(Campaign, campaign_id)
    if setting is None or setting.value.get("done") or campaign is None:
        return {"skipped": "nothing to label"}
    if labels_unavailable(app.config) is not None:
        return {"skipped": "labels need the missive transport"}
    state = setting.value
    cutoff = datetime.fromisoformat(state["ready_at"]) + BACKFILL_MARGIN
    before = sa.and_(
        OutboundMessage.campaign_id == campaign_id, OutboundMessage.claimed_at < cutoff
    )
    in_flight = db.session.scalar(
        sa.select(sa.func.count()).where(before, OutboundMessage.status == MessageStatus.SENDING)
    )
    if in_flight and state["waits"] < BACKFILL_MAX_WAITS:
        _save(setting, waits=state["waits"] + 1)
        _enqueue_later(app, BACKFILL_JOB, campaign_id, BACKFILL_WAIT_SECONDS)
        return {"waiting_for": in_flight}
    conversations = db.session.scalars(
        sa.select(OutboundMessage.missive_conversation_id)
        .where(
            before,
            OutboundMessage.missive_conversation_id.is_not(None),
            OutboundMessage.missive_conversation_id > state["after"],
        )
        .group_by(OutboundMessage.missive_conversation_id)
        .order_by(OutboundMessage.missive_conversation_id)
        .limit(BACKFILL_CHUNK)
    ).all()
    db.session.commit()
    client = _label_client(app)
    name = campaign.missive_label_name
    title = campaign.title or f"#{campaign_id}"
    text = f"Labelled “{name}” for the campaign “{title}” (sent before the label was ready)."
    applied = 0
    for conversation in conversations:
        try:
            client.create_post(
                conversation,
                text,
                username=app.config["MISSIVE_POST_USERNAME"],
                labels=list(state["label_ids"]),
            )
        except ProviderError as exc:
            if _retryable(exc) and state["retries"] < BACKFILL_MAX_RETRIES:
                delay = _retry_delay(exc, state["retries"] + 1)
                _save(setting, retries=state["retries"] + 1, last_error=_problem(exc))
                _enqueue_later(app, BACKFILL_JOB, campaign_id, delay)
                return {"applied": applied, "retry_in": delay}
            # A conversation deleted meanwhile, or Missive failing for good: count it, go on.
            _save(setting, after=conversation, failed=state["failed"] + 1, last_error=_problem(exc))
            state = setting.value
            continue
        applied += 1
        _save(setting, after=conversation, applied=state["applied"] + 1)
        state = setting.value
    if len(conversations) == BACKFILL_CHUNK:
        _enqueue_later(app, BACKFILL_JOB, campaign_id, 0)
        return {"applied": applied, "more": True}
    _save(setting, done=True)
    return {"applied": applied, "done": True, "total": state["applied"], "failed": state["failed"]}
