"""One send's messages, recipient by recipient: the paged table and the CSV of outcomes.

Pages walk the (send, contact_id, step) unique index with a keyset cursor and never count: a
send may have a million rows, and its totals are in its stored statistics.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.contacts.phones import looks_like_phone, normalize_phone
from app.exports import safe_cell
from app.extensions import db
from app.models import PROBLEM_STATUSES, Contact, MessageStatus, OutboundMessage, Segment
from app.sends import Send, send_column

PAGE_SIZE = 50
STATUSES = tuple(s.value for s in MessageStatus)
_CURSOR = re.compile(r"^(\d{1,18})-(first|second)$")


@dataclass(frozen=True)
class RecipientRow:
    id: int
    contact_id: int
    phone: str
    name: str | None
    step: str
    body: str  # the text this person was sent (or is to be sent)
    status: str
    error_code: str | None
    error_message: str | None
    cancel_reason: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    segment: str | None


@dataclass(frozen=True)
class RecipientPage:
    rows: list[RecipientRow]
    next_cursor: str | None  # `after` for the next page; None on the last one


def clean_filters(status: str | None, search: str | None) -> tuple[str, str]:
    """Unknown statuses are ignored and searches trimmed, so any query string is safe."""
    status = (status or "").strip()
    if status not in STATUSES and status != "problems":
        status = ""
    return status, (search or "").strip()[:40]


def _base(send: Send, status: str, search: str) -> sa.Select:
    m = OutboundMessage
    query = (
        sa.select(
            m.id,
            m.contact_id,
            Contact.phone,
            Contact.name,
            m.step,
            m.body,
            m.status,
            m.error_code,
            m.error_message,
            m.cancel_reason,
            m.sent_at,
            m.delivered_at,
            Segment.name.label("segment"),
        )
        .join(Contact, Contact.id == m.contact_id)
        .outerjoin(Segment, Segment.id == m.segment_id)
        .where(send_column(send) == send.id)
    )
    if status == "problems":
        query = query.where(m.status.in_(PROBLEM_STATUSES))
    elif status:
        query = query.where(m.status == status)
    if search:
        phone = normalize_phone(search) if looks_like_phone(search) else None
        digits = re.sub(r"\D", "", search)
        if phone:
            query = query.where(Contact.phone == phone)
        elif digits:
            query = query.where(Contact.phone.like(f"%{digits}%"))
        else:
            query = query.where(sa.false())
    return query


def recipients_page(
    send: Send,
    *,
    status: str = "",
    search: str = "",
    after: str = "",
    limit: int = PAGE_SIZE,
) -> RecipientPage:
    """One page of messages in (contact, step) order, from the cursor `after` ("<contact>-<step>")."""
    m = OutboundMessage
    query = _base(send, status, search)
    match = _CURSOR.match(after or "")
    if match:
        contact_id, step = int(match.group(1)), match.group(2)
        query = query.where(sa.tuple_(m.contact_id, m.step) > sa.tuple_(contact_id, step))
    rows = db.session.execute(query.order_by(m.contact_id, m.step).limit(limit + 1)).all()
    items = [_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    cursor = f"{items[-1].contact_id}-{items[-1].step}" if more and items else None
    return RecipientPage(items, cursor)


def _row(r: Any) -> RecipientRow:
    return RecipientRow(
        id=r.id,
        contact_id=r.contact_id,
        phone=r.phone,
        name=r.name,
        step=str(r.step),
        body=r.body,
        status=str(r.status),
        error_code=r.error_code,
        error_message=r.error_message,
        cancel_reason=r.cancel_reason,
        sent_at=r.sent_at,
        delivered_at=r.delivered_at,
        segment=r.segment,
    )


CSV_HEADER = [
    "phone",
    "name",
    "step",
    "body",
    "status",
    "got it",
    "why not",
    "error code",
    "segment",
    "sent at",
    "delivered at",
]


def _why_not(row: RecipientRow) -> str:
    if row.status in ("delivered", "sent"):
        return ""
    if row.status in ("failed", "undelivered"):
        return row.error_message or f"the carrier said {row.status}"
    if row.status == "cancelled":
        return "cancelled: " + (row.cancel_reason or "no reason recorded")
    if row.status == "skipped":
        return "skipped: " + (row.cancel_reason or row.error_message or "no reason recorded")
    if row.status == "unknown":
        return "the provider could not tell whether it was sent (see System › Needs attention)"
    return "not sent yet"


def outcome_csv(send: Send, zone: str, *, status: str = "", chunk: int = 2000) -> Iterator[str]:
    """The CSV of outcomes, a few thousand rows at a time (streamed, never all in memory)."""
    tz = ZoneInfo(zone)

    def when(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    yield out.getvalue()
    after = ""
    while True:
        page = recipients_page(send, status=status, after=after, limit=chunk)
        out.seek(0)
        out.truncate()
        for row in page.rows:
            got_it = {"delivered": "yes", "sent": "sent, no receipt yet"}.get(row.status, "no")
            writer.writerow(
                [
                    safe_cell(row.phone),
                    safe_cell(row.name),
                    "first" if row.step == "first" else "follow-up",
                    safe_cell(row.body),
                    row.status,
                    got_it,
                    safe_cell(_why_not(row)),
                    safe_cell(row.error_code),
                    safe_cell(row.segment),
                    when(row.sent_at),
                    when(row.delivered_at),
                ]
            )
        yield out.getvalue()
        if page.next_cursor is None:
            return
        after = page.next_cursor
