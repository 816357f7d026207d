"""Creating outbound rows, idempotently: the unique (send, contact, step) key drops repeats."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Broadcast, Campaign, MessageStatus, OutboundMessage, Step, utcnow
from app.sending.sms import sms_segments

# Bind parameters per statement: PostgreSQL allows 65,535, SQLite 32,766.
MAX_PARAMS = {"postgresql": 60_000, "sqlite": 30_000}


def insert_ignoring_duplicates(rows: list[dict[str, Any]]) -> int:
    """INSERT … ON CONFLICT DO NOTHING in chunks; returns how many rows were new."""
    if not rows:
        return 0
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    chunk_size = max(1, MAX_PARAMS.get(dialect, 30_000) // (len(rows[0]) + 2))
    created = 0
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start : start + chunk_size]
        table = OutboundMessage.__table__
        stmt = insert(table).values(chunk).on_conflict_do_nothing().returning(table.c.id)
        created += len(db.session.execute(stmt).all())
    return created


def create_outbound(
    send: Broadcast | Campaign,
    contact_ids: Iterable[int],
    body: str,
    *,
    step: Step = Step.FIRST,
    segment_id: int | None = None,
    scheduled_for: datetime | None = None,
) -> int:
    """One `queued` row per contact for `send` (or `scheduled` when `scheduled_for` is later).

    A contact that already has this step of this send keeps its row: calling this twice creates
    nothing new. The caller commits, then calls `enqueue_sending`.
    """
    now = utcnow()
    status = (
        MessageStatus.SCHEDULED if scheduled_for and scheduled_for > now else MessageStatus.QUEUED
    )
    key = "broadcast_id" if isinstance(send, Broadcast) else "campaign_id"
    segments = sms_segments(body)
    rows = [
        {
            key: send.id,
            "contact_id": contact_id,
            "step": step,
            "body": body,
            "segment_id": segment_id,
            "status": status,
            "scheduled_for": scheduled_for,
            "sms_segments": segments,
            "attempts": 0,
        }
        for contact_id in dict.fromkeys(contact_ids)
    ]
    return insert_ignoring_duplicates(rows)


def queued_count() -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).where(OutboundMessage.status == MessageStatus.QUEUED)
    )
