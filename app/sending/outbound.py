"""Every insert of outbound rows: the first messages of a send, follow-ups, and the helper tests
use. Idempotent where it can be repeated: the unique (send, contact, step) key drops repeats.

Services here take plain values and never commit; the boundary (the start of a send, the
worker's results, a webhook, a person's decision) commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import (
    ACCEPTED_STATUSES,
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    InboundMessage,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.sms import sms_segments

T = OutboundMessage.__table__
# Bind parameters per statement: PostgreSQL allows 65,535, SQLite 32,766.
MAX_PARAMS = {"postgresql": 60_000, "sqlite": 30_000}


def send_key(send: Broadcast | Campaign) -> str:
    """The column that points an outbound row at its send."""
    return "broadcast_id" if isinstance(send, Broadcast) else "campaign_id"


def insert_ignoring_duplicates(rows: list[dict[str, Any]]) -> list[int]:
    """INSERT … ON CONFLICT DO NOTHING in chunks; returns the ids of the rows that were new."""
    if not rows:
        return []
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    chunk_size = max(1, MAX_PARAMS.get(dialect, 30_000) // (len(rows[0]) + 2))
    created: list[int] = []
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start : start + chunk_size]
        stmt = insert(T).values(chunk).on_conflict_do_nothing().returning(T.c.id)
        created.extend(db.session.scalars(stmt))
    return created


# -- first messages --------------------------------------------------------------------------
def _int_array(values: Sequence[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def _text_array(values: Sequence[str]) -> str:
    """A text[] literal: each element double-quoted, with backslash and quote escaped (inside
    quotes PostgreSQL takes everything else as it is: commas, braces, spaces, newlines)."""
    if not values:
        return "{}"
    return '{"' + '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values) + '"}'


def insert_first_messages(
    send: Broadcast | Campaign,
    contact_ids: Sequence[int],
    segment_ids: Sequence[int | None] | None,
    body: str | Sequence[str],
    *,
    now: datetime | None = None,
) -> int:
    """The `queued` first messages of a send that has just been claimed for starting: one row
    per (contact, segment, body); `body` is one text for all, or one per contact (personalized
    campaigns). Returns how many rows were written.

    One set-based `INSERT … SELECT FROM unnest(…)` on PostgreSQL. No ON CONFLICT: the send was
    claimed in this very transaction and the contacts are distinct, so no row can exist yet,
    and a plain insert is much cheaper than a speculative one (bench.start_broadcast).
    """
    now = now or utcnow()
    n = len(contact_ids)
    segment_ids = list(segment_ids) if segment_ids is not None else [None] * n
    per_row = not isinstance(body, str)
    if (per_row and len(body) != n) or len(segment_ids) != n:
        raise ValueError("one segment id and one body per contact")
    if len(set(contact_ids)) != n:
        raise ValueError("contacts must be distinct")
    if not n:
        return 0
    key = send_key(send)
    if db.session.get_bind().dialect.name == "postgresql":
        params: dict[str, Any] = {
            "send": send.id,
            "now": now,
            # Integer arrays as text, parsed by PostgreSQL: adapting 100,000 Python ints one
            # by one costs more than the parse.
            "contacts": _int_array(contact_ids),
            "segment_ids": _int_array(segment_ids),
        }
        if per_row:
            params["bodies"] = _text_array(body)
            params["sms"] = _int_array([sms_segments(text) for text in body])
            source = (
                "unnest(CAST(:contacts AS bigint[]), CAST(:segment_ids AS bigint[]), "
                "CAST(:bodies AS text[]), CAST(:sms AS integer[])) "
                "AS r(contact_id, segment_id, body, sms_segments)"
            )
            columns = "r.body, r.sms_segments"
        else:
            params["body"] = body
            params["sms"] = sms_segments(body)
            source = (
                "unnest(CAST(:contacts AS bigint[]), CAST(:segment_ids AS bigint[])) "
                "AS r(contact_id, segment_id)"
            )
            columns = ":body, :sms"
        result = db.session.execute(
            sa.text(
                f"INSERT INTO outbound_messages ({key}, contact_id, step, segment_id, status, "
                "body, sms_segments, attempts, created_at, updated_at) "
                f"SELECT :send, r.contact_id, 'first', r.segment_id, 'queued', {columns}, 0, "
                f":now, :now FROM {source}"
            ),
            params,
        )
        return result.rowcount or 0
    bodies = list(body) if per_row else [body] * n
    segments = {text: sms_segments(text) for text in set(bodies)}
    rows = [
        {
            key: send.id,
            "contact_id": cid,
            "step": Step.FIRST,
            "body": text,
            "segment_id": sid,
            "status": MessageStatus.QUEUED,
            "sms_segments": segments[text],
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for cid, sid, text in zip(contact_ids, segment_ids, bodies, strict=True)
    ]
    return len(insert_ignoring_duplicates(rows))


def create_outbound(
    send: Broadcast | Campaign,
    contact_ids: Iterable[int],
    body: str,
    *,
    step: Step = Step.FIRST,
    segment_id: int | None = None,
    scheduled_for: datetime | None = None,
) -> int:
    """One `queued` row per contact for `send` (or `scheduled` when `scheduled_for` is later):
    the helper tests, benchmarks and the SQLite smoke use. Returns how many rows were new.

    A contact that already has this step of this send keeps its row: calling this twice creates
    nothing new. The caller commits, then calls `enqueue_sending`.
    """
    now = utcnow()
    status = (
        MessageStatus.SCHEDULED if scheduled_for and scheduled_for > now else MessageStatus.QUEUED
    )
    segments = sms_segments(body)
    rows = [
        {
            send_key(send): send.id,
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
    return len(insert_ignoring_duplicates(rows))


# -- follow-ups --------------------------------------------------------------------------------
def provider_has_it() -> sa.ColumnElement[bool]:
    """The provider accepted the message: `sent` or later, or `failed` after acceptance."""
    return sa.or_(
        T.c.status.in_(ACCEPTED_STATUSES),
        sa.and_(T.c.status == MessageStatus.FAILED, T.c.provider_sid.is_not(None)),
    )


def after_first_accepted(message_ids: Iterable[int], accepted_at: datetime) -> list[int]:
    """The one way a follow-up comes to exist (SPEC 6.3, 6.4): for each of these messages that
    is a first message the provider has accepted, of a send with a second message, its
    follow-up, `scheduled` at `accepted_at` + the send's delay. Returns the new follow-ups' ids.

    Every path that makes a first message `sent` calls it: the worker's results, recovery,
    status callbacks, the Needs-attention decision, reconciliation. Idempotent (the unique
    (send, contact, step) key), so two paths racing each other create one follow-up. A contact
    who already replied gets the follow-up cancelled at once (reason `replied`), so the figures
    show it as cancelled by the reply rather than waiting. The caller commits.
    """
    ids = sorted(set(message_ids))
    if not ids:
        return []
    firsts = db.session.execute(
        sa.select(T.c.broadcast_id, T.c.campaign_id, T.c.contact_id, T.c.segment_id).where(
            T.c.id.in_(ids), T.c.step == Step.FIRST, provider_has_it()
        )
    ).all()
    if not firsts:
        return []
    sends: dict[tuple[str, int], tuple[str | None, int]] = {}
    # A cancelled send gets no new follow-ups (a first message accepted after the cancel). The
    # send's row is read FOR SHARE: a cancel locks it first (cancel_send), so either the cancel
    # waits for this transaction and then cancels the follow-ups it made, or this one waits for
    # the cancel and sees it; never a follow-up left scheduled on a cancelled send.
    for model, key, cancelled in (
        (Broadcast, "broadcast_id", BroadcastStatus.CANCELLED),
        (Campaign, "campaign_id", CampaignStatus.CANCELLED),
    ):
        wanted = {getattr(row, key) for row in firsts if getattr(row, key)}
        if wanted:
            for send in db.session.execute(
                sa.select(model.id, model.second_message, model.delay_seconds)
                .where(model.id.in_(wanted), model.status != cancelled)
                .order_by(model.id)
                .with_for_update(read=True)
            ):
                sends[(key, send.id)] = (send.second_message, send.delay_seconds)
    rows = []
    for first in firsts:
        key = "broadcast_id" if first.broadcast_id else "campaign_id"
        second, delay = sends.get((key, getattr(first, key)), (None, 0))
        if not second or not second.strip():
            continue
        rows.append(
            {
                "broadcast_id": first.broadcast_id,
                "campaign_id": first.campaign_id,
                "contact_id": first.contact_id,
                "step": Step.SECOND,
                "body": second,
                "segment_id": first.segment_id,
                "status": MessageStatus.SCHEDULED,
                "scheduled_for": accepted_at + timedelta(seconds=delay or 0),
                "sms_segments": sms_segments(second),
                "attempts": 0,
                "created_at": accepted_at,
                "updated_at": accepted_at,
            }
        )
    created = insert_ignoring_duplicates(rows)
    replied = replied_since_first_message(created)
    if replied:
        db.session.execute(
            sa.update(T)
            .where(T.c.id.in_(sorted(replied)), T.c.status == MessageStatus.SCHEDULED)
            .values(status=MessageStatus.CANCELLED, cancel_reason="replied")
        )
    return created


def first_of_same_send(follow: sa.TableClause, first: sa.TableClause) -> sa.ColumnElement[bool]:
    """Join condition: `first` is the first message of the send and contact `follow` belongs to."""
    return sa.and_(
        first.c.contact_id == follow.c.contact_id,
        first.c.step == Step.FIRST,
        sa.or_(
            sa.and_(
                follow.c.broadcast_id.is_not(None), first.c.broadcast_id == follow.c.broadcast_id
            ),
            sa.and_(follow.c.campaign_id.is_not(None), first.c.campaign_id == follow.c.campaign_id),
        ),
    )


def replied_query(follow_up_ids: Sequence[int]) -> sa.Select:
    """The ids among these follow-ups whose contact has sent us anything but a keyword since
    the first message of the same send went out."""
    first = T.alias("first")
    return (
        sa.select(T.c.id)
        .join(first, first_of_same_send(T, first))
        .where(
            T.c.id.in_(follow_up_ids),
            sa.exists().where(
                InboundMessage.contact_id == T.c.contact_id,
                InboundMessage.keyword.is_(None),
                InboundMessage.received_at >= sa.func.coalesce(first.c.sent_at, first.c.created_at),
            ),
        )
    )


def replied_since_first_message(follow_up_ids: Iterable[int]) -> set[int]:
    """The follow-ups whose contact has sent us anything but a keyword since the first message
    of the same send went out: the follow-up is cancelled by the reply (SPEC 6.5)."""
    ids = sorted(set(follow_up_ids))
    if not ids:
        return set()
    return set(db.session.execute(replied_query(ids)).scalars())


def queued_count() -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).where(OutboundMessage.status == MessageStatus.QUEUED)
    )
