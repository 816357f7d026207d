"""Status reconciliation (SPEC 8a), Twilio transport: fetch each open message by its SID.

Callbacks can be late or never come. Every outbound message of the last `since_days` with a
provider SID whose status is not final (`sent`, or `sending`/`unknown` with a SID) is fetched
from Twilio by its own SID, so a contact's first message and follow-up each get their own
status, never the latest row's. Reads go through a small thread pool and a pace shared by every
worker (a Redis token bucket); a 429 is waited out (Retry-After) and that SID tried again a few
times. Updates go through `apply_status_update` (monotonic; unknown values stored). Rows are
taken in id order in chunks and each chunk is committed, so a killed run redoes at most one.

Messages sent through Missive (no Twilio SID) are matched through Twilio's list: not here yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.extensions import db, get_redis
from app.integrations import ProviderError, ProviderMessage
from app.integrations.twilio import TwilioGateway
from app.models import Broadcast, Campaign, MessageStatus, OutboundMessage, utcnow
from app.sending.pacing import TokenBucket
from app.sending.status import StatusUpdate, apply_status_update
from app.sending.transports import get_transport

OPEN_STATUSES = (MessageStatus.SENT, MessageStatus.SENDING, MessageStatus.UNKNOWN)
READS_PER_SECOND = 20.0  # Twilio's read pace for one account, shared by every worker
READ_WORKERS = 4
CHUNK_SIZE = 500
MAX_429_RETRIES = 5
DEFAULT_BACKOFF = 1.0  # seconds, when a 429 carries no Retry-After


def reads_bucket(app: Flask) -> TokenBucket:
    rate = app.config.get("TWILIO_READS_PER_SECOND") or READS_PER_SECOND
    return TokenBucket(get_redis(app), f"{app.config['REDIS_KEY_PREFIX']}:twilio:reads", rate)


def open_messages_query(since_days: int, send: Broadcast | Campaign | None) -> sa.Select:
    table = OutboundMessage.__table__
    query = sa.select(
        table.c.id,
        table.c.status,
        table.c.provider_sid,
        table.c.provider_status,
        table.c.error_code,
    ).where(
        table.c.provider_sid.is_not(None),
        table.c.status.in_(OPEN_STATUSES),
        table.c.created_at >= utcnow() - timedelta(days=since_days),
    )
    if isinstance(send, Broadcast):
        query = query.where(table.c.broadcast_id == send.id)
    elif isinstance(send, Campaign):
        query = query.where(table.c.campaign_id == send.id)
    return query.order_by(table.c.id)


def reconcile_statuses(  # noqa: PLR0913 (knobs for tests and the benchmark)
    app: Flask,
    *,
    since_days: int = 7,
    send: Broadcast | Campaign | None = None,
    limit: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    workers: int = READ_WORKERS,
    max_429_retries: int = MAX_429_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Fetch and apply the provider status of every open Twilio message; returns the counts.

    `send` limits it to one broadcast's or campaign's messages, `limit` to that many messages.
    The caller's session is committed after each chunk.
    """
    counts: dict[str, Any] = {
        "checked": 0,
        "updated": 0,
        "unchanged": 0,
        "errors": 0,
        "rate_limited": 0,
        "missing": 0,
    }
    if app.config["TRANSPORT"] != "twilio":
        counts["skipped"] = (
            f"transport is {app.config['TRANSPORT']}: only Twilio messages are reconciled by SID"
        )
        return counts
    gateway: TwilioGateway = get_transport(app).gateway  # type: ignore[attr-defined]
    bucket = reads_bucket(app)

    def fetch(sid: str) -> tuple[ProviderMessage | None, int, str | None]:
        """(message or None, 429s met, error): None with no error when Twilio has no such SID."""
        limited = 0
        while True:
            bucket.acquire()
            try:
                return gateway.fetch(sid), limited, None
            except ProviderError as exc:
                if exc.http_status == 429 and limited < max_429_retries:
                    limited += 1
                    wait = exc.retry_after if exc.retry_after is not None else DEFAULT_BACKOFF
                    sleep(max(wait, 0.0) * limited if wait else 0.0)
                    continue
                return None, limited + (exc.http_status == 429), exc.message or exc.kind

    last_id = 0
    remaining = limit
    base = open_messages_query(since_days, send)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while remaining is None or remaining > 0:
            size = chunk_size if remaining is None else min(chunk_size, remaining)
            rows = db.session.execute(
                base.where(OutboundMessage.__table__.c.id > last_id).limit(size)
            ).all()
            if not rows:
                break
            results = list(pool.map(fetch, [row.provider_sid for row in rows]))
            for row, (message, limited, error) in zip(rows, results, strict=True):
                counts["checked"] += 1
                counts["rate_limited"] += limited
                if error is not None:
                    counts["errors"] += 1
                    continue
                if message is None:
                    counts["missing"] += 1
                    continue
                status = (message.status or "").strip().lower()[:40]
                if (
                    row.status == MessageStatus.SENT
                    and status == (row.provider_status or "")
                    and message.error_code == row.error_code
                ):
                    counts["unchanged"] += 1
                    continue
                changed = apply_status_update(
                    StatusUpdate(
                        provider_status=status,
                        message_id=row.id,
                        provider_sid=row.provider_sid,
                        error_code=message.error_code,
                    )
                )
                counts["updated" if changed else "unchanged"] += 1
            db.session.commit()
            last_id = rows[-1].id
            if remaining is not None:
                remaining -= len(rows)
    return counts
