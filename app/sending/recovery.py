"""The tick's share of the engine: release what is due, and recover stale claims (SPEC 6.4)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.models import (
    IN_FLIGHT_STATUSES,
    Contact,
    MessageStatus,
    MissiveConversation,
    OutboundMessage,
    utcnow,
)
from app.sending.engine import bulk_update, status_is
from app.sending.outbound import after_first_accepted
from app.sending.transports import LookupResult, OutboundItem, get_transport

log = logging.getLogger(__name__)
T = OutboundMessage.__table__
RECOVERY_BATCH = 200
LOOKUP_CONCURRENCY = 4
# A message the provider cannot account for is asked about again after this long.
UNRESOLVED_RECHECK = timedelta(hours=1)
NEEDS_ATTENTION_PREFIX = "Needs attention: "


def release_due(now: datetime | None = None) -> dict[str, int]:
    """`scheduled` messages whose time has come, and `retrying` ones whose next attempt is due,
    become `queued`. Commits."""
    now = now or utcnow()
    scheduled = db.session.execute(
        sa.update(T)
        .where(T.c.status == MessageStatus.SCHEDULED, T.c.scheduled_for <= now)
        .values(status=MessageStatus.QUEUED)
    ).rowcount
    retries = db.session.execute(
        sa.update(T)
        .where(T.c.status == MessageStatus.RETRYING, T.c.next_attempt_at <= now)
        .values(status=MessageStatus.QUEUED)
    ).rowcount
    db.session.commit()
    return {"released_scheduled": scheduled or 0, "released_retries": retries or 0}


def stale_claims(app: Flask, now: datetime, limit: int = RECOVERY_BATCH) -> list[OutboundItem]:
    cutoff = now - timedelta(seconds=app.config["STALE_CLAIM_SECONDS"])
    # Missive can only be asked within a conversation: the message's own, else the contact's
    # mirrored conversation (a worker that died never recorded the one Missive answered with).
    mirrored = (
        sa.select(MissiveConversation.missive_id)
        .where(MissiveConversation.contact_id == T.c.contact_id)
        .order_by(MissiveConversation.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(
            T.c.id,
            T.c.body,
            T.c.claimed_at,
            sa.func.coalesce(T.c.missive_conversation_id, mirrored).label("conversation_id"),
            T.c.sms_segments,
            Contact.phone,
        )
        .join(Contact, Contact.id == T.c.contact_id)
        .where(
            T.c.status.in_(IN_FLIGHT_STATUSES),
            T.c.claimed_at < cutoff,
            sa.or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now),
        )
        .order_by(T.c.claimed_at)
        .limit(limit)
    ).all()
    return [
        OutboundItem(
            id=row.id,
            to=row.phone,
            body=row.body,
            sms_segments=row.sms_segments,
            claimed_at=row.claimed_at,
            conversation_id=row.conversation_id,
        )
        for row in rows
    ]


def recover_stale_claims(app: Flask, now: datetime | None = None) -> dict[str, int]:
    """Resolve messages left `sending`/`unknown` past STALE_CLAIM_SECONDS by asking the provider.

    Found → `sent` with its id (and its follow-up created); provably absent → `queued` again;
    the provider cannot tell → stays `unknown` with the reason, listed under Needs attention,
    never resent automatically. Each update re-checks the claim time it read, so a worker that
    was merely slow and records its own result first wins. Commits.
    """
    now = now or utcnow()
    items = stale_claims(app, now)
    counts = {"recovered_sent": 0, "recovered_requeued": 0, "needs_attention": 0}
    if not items:
        return counts
    transport = get_transport(app)
    with ThreadPoolExecutor(max_workers=LOOKUP_CONCURRENCY) as pool:
        results: list[LookupResult] = list(pool.map(transport.lookup, items))
    # Each update re-checks the claim time it read: a slow worker that recorded first wins.
    same_claim = sa.and_(status_is(*IN_FLIGHT_STATUSES), T.c.claimed_at == sa.bindparam("_claimed"))
    found, absent, unresolved = [], [], []
    for item, result in zip(items, results, strict=True):
        params = {"_id": item.id, "_claimed": item.claimed_at}
        if result.found is True:
            found.append(
                {**params, "_sid": result.provider_sid, "_pstatus": result.provider_status}
            )
        elif result.found is False:
            absent.append(params)
        else:
            unresolved.append({**params, "_msg": NEEDS_ATTENTION_PREFIX + result.reason})
    counts["recovered_sent"] = bulk_update(
        found,
        same_claim,
        status=MessageStatus.SENT,
        provider_sid=sa.func.coalesce(T.c.provider_sid, sa.bindparam("_sid")),
        provider_status=sa.bindparam("_pstatus"),
        sent_at=now,
        transport=transport.name,
        error_message=None,
        next_attempt_at=None,
    )
    # Only the rows that really became `sent` get a follow-up: after_first_accepted checks.
    after_first_accepted([row["_id"] for row in found], now)
    counts["recovered_requeued"] = bulk_update(
        absent, same_claim, status=MessageStatus.QUEUED, claimed_at=None, error_message=None
    )
    counts["needs_attention"] = bulk_update(
        unresolved,
        same_claim,
        status=MessageStatus.UNKNOWN,
        error_message=sa.bindparam("_msg"),
        next_attempt_at=now + UNRESOLVED_RECHECK,
    )
    db.session.commit()
    return counts
