"""Status reconciliation (SPEC 8a): fetch the provider status of open messages, by SID or, for
messages sent through Missive, through Twilio's Messages list.

Callbacks can be late or never come. Every outbound message of the last `since_days` whose
status is not final (`sent`, or `sending`/`unknown`) is looked up:

* **By SID** (sent through Twilio, or sent through Missive and already matched to its Twilio
  SID): fetched from Twilio by its own SID, so a contact's first message and follow-up each get
  their own status, never the latest row's. Reads go through a small thread pool and a pace
  shared by every worker (a Redis token bucket, `TWILIO_READS_PER_SECOND`); a 429 is waited out
  (Retry-After) and that SID tried again a few times. Rows are taken in id order, a chunk at a
  time; each chunk's updates and the run's cursor (a `Setting` row, locked while the chunk is
  read, so two runs at once take turns instead of reading twice) are committed together, so a
  run killed halfway is continued by the next one after the last committed chunk.
* **Through Twilio's list** (sent through Missive: our row holds Missive's id, not Twilio's):
  when Twilio credentials are configured, the list of messages from our Missive number sent
  since the oldest open one is paged through (newest first, `next_page_uri`), and each Twilio
  message is matched to at most one of our rows by (recipient, exact body, time window around
  our claim). A row is decided once the scan has gone past its window: exactly one Twilio
  message fits it and it is the only row that message fits, or it is left alone and counted
  `ambiguous` (a first message and its follow-up with the same text in one window are two rows
  for one message: ambiguous too). The SID found is stored (`twilio_sid`) and the status applied;
  later runs fetch it by SID. The page to resume from is kept in a `Setting` row (the first
  page holding a row not decided yet, so a resumed scan loses nothing). Two list scans at once
  both read the pages; a match is still written once (`twilio_sid IS NULL` and its unique
  index). `unmatched` counts the open rows still without a SID when the scan ends (this run's
  ambiguous ones aside).

Every status goes through `apply_status_update` (monotonic; unknown values stored, never a
crash); a `sending`/`unknown` first message it resolves gets its follow-up there, through
`after_first_accepted`, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import IntegrityError

from app.extensions import db, get_redis
from app.integrations import ProviderError, ProviderMessage
from app.integrations.twilio import ListedMessage, TwilioGateway
from app.models import (
    Broadcast,
    Campaign,
    Contact,
    MessageStatus,
    OutboundMessage,
    Setting,
    utcnow,
)
from app.sending.pacing import TokenBucket
from app.sending.status import StatusUpdate, apply_status_update
from app.sending.transports import get_transport

OPEN_STATUSES = (MessageStatus.SENT, MessageStatus.SENDING, MessageStatus.UNKNOWN)
# Rows a Twilio message may belong to (for ambiguity): anything Missive may have handed on.
_HANDED_ON = OPEN_STATUSES + (
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
)
READ_WORKERS = 4
CHUNK_SIZE = 500
CHUNK_SECONDS = 30  # a chunk is at most this many seconds of reads (the cursor lock's length)
MAX_429_RETRIES = 5
DEFAULT_BACKOFF = 1.0  # seconds, when a 429 carries no Retry-After
LIST_PAGE_SIZE = 1000  # Twilio's largest page
# A Twilio message fits a row when Twilio created it between our claim (less clock skew) and
# a few minutes after we recorded it sent (Missive hands a draft to Twilio within seconds).
MATCH_BEFORE = timedelta(minutes=2)
MATCH_AFTER = timedelta(minutes=10)
# A cursor older than this belongs to a run that died long ago: start over instead.
CURSOR_MAX_AGE = timedelta(hours=12)
SID_CURSOR = "reconcile:sid:"  # Setting keys, + "all", "broadcast:<id>" or "campaign:<id>"
LIST_CURSOR = "reconcile:list:"

T = OutboundMessage.__table__
Send = Broadcast | Campaign


def reads_bucket(app: Flask) -> TokenBucket:
    rate = max(float(app.config["TWILIO_READS_PER_SECOND"]), 0.1)
    return TokenBucket(get_redis(app), f"{app.config['REDIS_KEY_PREFIX']}:twilio:reads", rate)


def reconcile_unavailable(config: dict[str, Any]) -> str | None:
    """Why this app cannot check statuses at all, in words for a page; None when it can."""
    transport = config["TRANSPORT"]
    if transport == "twilio":
        return None
    if transport == "missive":
        if not (config["TWILIO_ACCOUNT_SID"] and config["TWILIO_AUTH_TOKEN"]):
            return (
                "Messages sent through Missive are checked in Twilio's list of messages, and no "
                "Twilio credentials are configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)."
            )
        if not config["MISSIVE_FROM_NUMBER"]:
            return "MISSIVE_FROM_NUMBER is not set: there is no sender to list messages of."
        return None
    return (
        f"The {transport} transport sends nothing to a provider, so there is no provider "
        "status to check."
    )


def twilio_reader(app: Flask) -> TwilioGateway | None:
    """The Twilio client reads go through: the transport's with the Twilio transport, else one
    of its own when Twilio credentials are configured (Missive sends through that account)."""
    config = app.config
    if config["TRANSPORT"] == "twilio":
        return get_transport(app).gateway  # type: ignore[attr-defined]
    if not (config["TWILIO_ACCOUNT_SID"] and config["TWILIO_AUTH_TOKEN"]):
        return None
    reader = app.extensions.get("twilio_reader")
    if reader is None:
        reader = app.extensions["twilio_reader"] = TwilioGateway(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            from_number=config["MISSIVE_FROM_NUMBER"] or config["TWILIO_FROM_NUMBER"],
            messaging_service_sid=config["TWILIO_MESSAGING_SERVICE_SID"],
            base_url=config["TWILIO_API_BASE_URL"],
            timeouts=(config["PROVIDER_CONNECT_TIMEOUT"], config["PROVIDER_READ_TIMEOUT"]),
            pool_size=READ_WORKERS,
        )
    return reader


def _scope(send: Send | None) -> str:
    if send is None:
        return "all"
    return f"{'broadcast' if isinstance(send, Broadcast) else 'campaign'}:{send.id}"


def _send_filter(send: Send | None) -> list[sa.ColumnElement[bool]]:
    if isinstance(send, Broadcast):
        return [T.c.broadcast_id == send.id]
    if isinstance(send, Campaign):
        return [T.c.campaign_id == send.id]
    return []


def _is_missive() -> sa.ColumnElement[bool]:
    return T.c.transport == "missive"


def by_sid_query(since_days: int, send: Send | None) -> sa.Select:
    """Open messages with a Twilio SID: sent through Twilio (their `provider_sid`), or through
    Missive and matched already (`twilio_sid`). Simulator rows have no Twilio SID."""
    missive = _is_missive()
    twilio_sent = sa.and_(
        T.c.provider_sid.is_not(None),
        sa.func.coalesce(T.c.transport, "twilio").not_in(("missive", "simulator")),
    )
    return (
        sa.select(
            T.c.id,
            T.c.status,
            sa.case((missive, T.c.twilio_sid), else_=T.c.provider_sid).label("sid"),
            missive.label("via_missive"),
            T.c.provider_status,
            T.c.error_code,
        )
        .where(
            sa.or_(twilio_sent, sa.and_(missive, T.c.twilio_sid.is_not(None))),
            T.c.status.in_(OPEN_STATUSES),
            T.c.created_at >= utcnow() - timedelta(days=since_days),
            *_send_filter(send),
        )
        .order_by(T.c.id)
    )


open_messages_query = by_sid_query  # the name the first version had


@dataclass
class _Reader:
    """Paced Twilio reads with 429s waited out; shared by the threads of one run."""

    bucket: TokenBucket
    max_429_retries: int
    sleep: Callable[[float], None]

    def call(self, read: Callable[[], Any]) -> tuple[Any, int, str | None]:
        """(result or None, 429s met, error or None)."""
        limited = 0
        while True:
            self.bucket.acquire()
            try:
                return read(), limited, None
            except ProviderError as exc:
                if exc.http_status == 429 and limited < self.max_429_retries:
                    limited += 1
                    wait = exc.retry_after if exc.retry_after is not None else DEFAULT_BACKOFF
                    self.sleep(max(wait, 0.0) * limited if wait else 0.0)
                    continue
                return None, limited + (exc.http_status == 429), exc.message or exc.kind


def _apply(
    row: Any, message: ProviderMessage | ListedMessage, counts: dict[str, Any], prefix: str = ""
) -> None:
    """Apply what Twilio holds; counts `<prefix>updated` or `<prefix>unchanged` (the list pass
    counts its own, so the by-SID figures never include what it matched)."""
    status = (message.status or "").strip().lower()[:40]
    if (
        row.status == MessageStatus.SENT
        and status == (row.provider_status or "")
        and message.error_code == row.error_code
    ):
        counts[prefix + "unchanged"] += 1
        return
    changed = apply_status_update(
        StatusUpdate(
            provider_status=status,
            message_id=row.id,
            # A Missive-sent row keeps Missive's id in provider_sid: found by our id alone.
            provider_sid=None if row.via_missive else row.sid,
            error_code=message.error_code,
        )
    )
    counts[prefix + ("updated" if changed else "unchanged")] += 1


def _cursor(key: str, *, lock: bool = False) -> Setting | None:
    query = sa.select(Setting).where(Setting.key == key)
    if lock:
        query = query.with_for_update()
    return db.session.scalars(query.execution_options(populate_existing=True)).first()


def _start_cursor(key: str, fresh: dict[str, Any]) -> dict[str, Any]:
    """The cursor of a run to continue (not older than CURSOR_MAX_AGE), or a new one; committed."""
    setting = _cursor(key, lock=True)
    value = dict(setting.value or {}) if setting is not None else {}
    started = value.get("started_at")
    if started and datetime.fromisoformat(started) > utcnow() - CURSOR_MAX_AGE:
        db.session.commit()
        return value
    value = {**fresh, "started_at": utcnow().isoformat()}
    if setting is None:
        # FOR UPDATE locks no row that does not exist yet: a run starting at the same moment
        # may insert it first, and then that run's cursor is the one to share.
        try:
            with db.session.begin_nested():
                db.session.add(Setting(key=key, value=value))
        except IntegrityError:
            db.session.commit()
            return _start_cursor(key, fresh)
    else:
        setting.value = value
    db.session.commit()
    return value


def _finish_cursor(key: str) -> None:
    db.session.execute(sa.delete(Setting).where(Setting.key == key))
    db.session.commit()


def reconcile_by_sid(  # noqa: PLR0913 (knobs for tests and the benchmark)
    app: Flask,
    gateway: TwilioGateway,
    reader: _Reader,
    counts: dict[str, Any],
    *,
    since_days: int,
    send: Send | None,
    limit: int | None,
    chunk_size: int,
    workers: int,
    on_progress: Callable[[dict[str, Any]], None] | None,
) -> None:
    """The by-SID pass (module docstring). `limit` stops it after that many messages, leaving
    its cursor for the next run, as a kill would."""
    key = SID_CURSOR + _scope(send)
    rate = max(float(app.config["TWILIO_READS_PER_SECOND"]), 0.1)
    chunk_size = max(1, min(chunk_size, int(rate * CHUNK_SECONDS)))
    base = by_sid_query(since_days, send)
    cursor = _start_cursor(key, {"after_id": 0})
    # What is left to read, for the progress bar (the count of this pass, from its cursor).
    counts["to_check"] = counts["checked"] + db.session.scalar(
        sa.select(sa.func.count()).select_from(
            base.where(T.c.id > int(cursor.get("after_id") or 0)).subquery()
        )
    )
    db.session.commit()
    remaining = limit
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while remaining is None or remaining > 0:
            # The cursor row stays locked until this chunk is committed: a second run waits
            # here, then goes on after this chunk instead of reading it again.
            setting = _cursor(key, lock=True)
            if setting is None:  # finished by a run alongside
                db.session.commit()
                return
            after_id = int((setting.value or {}).get("after_id") or 0)
            size = chunk_size if remaining is None else min(chunk_size, remaining)
            rows = db.session.execute(base.where(T.c.id > after_id).limit(size)).all()
            if not rows:
                db.session.delete(setting)
                db.session.commit()
                return
            # Each answer is applied as it comes, while the pool reads the rest of the chunk:
            # the database work hides behind the paced reads.
            results = pool.map(
                lambda sid: reader.call(lambda: gateway.fetch(sid)), [r.sid for r in rows]
            )
            for row, (message, limited, error) in zip(rows, results, strict=True):
                counts["checked"] += 1
                counts["rate_limited"] += limited
                if error is not None:
                    counts["errors"] += 1
                elif message is None:
                    counts["missing"] += 1
                else:
                    _apply(row, message, counts)
            setting.value = {**setting.value, "after_id": rows[-1].id}
            db.session.commit()
            if on_progress is not None:
                on_progress(counts)
            if remaining is not None:
                remaining -= len(rows)


# -- Missive-sent messages, through Twilio's list ---------------------------------------------
def _window_start() -> sa.ColumnElement[datetime]:
    return sa.func.coalesce(T.c.claimed_at, T.c.sent_at, T.c.created_at)


def _window_end() -> sa.ColumnElement[datetime]:
    return sa.func.coalesce(T.c.sent_at, T.c.claimed_at, T.c.created_at)


def _listable(since_days: int, send: Send | None) -> list[sa.ColumnElement[bool]]:
    """Missive-sent messages still without a Twilio SID and not final."""
    return [
        _is_missive(),
        T.c.twilio_sid.is_(None),
        T.c.status.in_(OPEN_STATUSES),
        T.c.created_at >= utcnow() - timedelta(days=since_days),
        *_send_filter(send),
    ]


@dataclass
class _Pending:
    """A row seen in the list and not decided yet (its window is not passed)."""

    row: Any
    window_start: datetime
    page: int  # index of the first page it was seen on (where a resumed run must re-read)
    sids: set[str] = field(default_factory=set)
    message: ListedMessage | None = None
    spoiled: bool = False  # a message it fits also fits another row


def _candidates(messages: list[ListedMessage], send: Send | None) -> dict[str, list[Any]]:
    """For each listed message, the Missive-sent rows it fits (recipient, exact body, window)."""
    wanted = [m for m in messages if m.direction.startswith("outbound") and m.to]
    if not wanted:
        return {}
    stamps = [m.date_created or m.date_sent for m in wanted if m.date_created or m.date_sent]
    if not stamps:
        return {}
    low, high = min(stamps) - MATCH_AFTER, max(stamps) + MATCH_BEFORE
    rows = db.session.execute(
        sa.select(
            T.c.id,
            T.c.status,
            T.c.twilio_sid,
            T.c.provider_status,
            T.c.error_code,
            T.c.body,
            _window_start().label("window_start"),
            _window_end().label("window_end"),
            Contact.phone,
            sa.true().label("via_missive"),
            T.c.twilio_sid.label("sid"),
        )
        .join(Contact, Contact.id == T.c.contact_id)
        .where(
            _is_missive(),
            T.c.status.in_(_HANDED_ON),
            Contact.phone.in_({m.to for m in wanted}),
            _window_end() >= low,
            _window_start() <= high,
            *_send_filter(send),
        )
    ).all()
    by_key: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        by_key.setdefault((row.phone, row.body), []).append(row)
    found: dict[str, list[Any]] = {}
    for message in wanted:
        moment = message.date_created or message.date_sent
        if moment is None:
            continue
        found[message.sid] = [
            row
            for row in by_key.get((message.to, message.body), [])
            if row.window_start - MATCH_BEFORE <= moment <= row.window_end + MATCH_AFTER
        ]
    return found


def reconcile_missive_list(  # noqa: PLR0913, PLR0915 (one scan, its cursor and its decisions)
    app: Flask,
    gateway: TwilioGateway,
    reader: _Reader,
    counts: dict[str, Any],
    *,
    since_days: int,
    send: Send | None,
    max_pages: int | None = None,
    page_size: int = LIST_PAGE_SIZE,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """The list pass (module docstring): counts `listed` (Twilio messages read), `matched`,
    `ambiguous` (rows left alone), `unmatched` (open rows the finished scan found nothing for).
    `max_pages` stops it after that many pages, leaving its cursor, as a kill would."""
    sender = app.config["MISSIVE_FROM_NUMBER"]
    if not sender:
        return
    listable = _listable(since_days, send)
    oldest = db.session.scalar(sa.select(sa.func.min(_window_start())).where(*listable))
    key = LIST_CURSOR + _scope(send)
    if oldest is None:
        _finish_cursor(key)
        return
    since = oldest - MATCH_BEFORE
    cursor = _start_cursor(key, {"since": since.isoformat(), "page_url": ""})
    since = datetime.fromisoformat(cursor["since"])
    page_url = cursor.get("page_url") or ""
    page_urls: list[str] = []
    pending: dict[int, _Pending] = {}
    pages = 0
    low_water: datetime | None = None

    def decide(done: bool) -> None:
        for row_id in list(pending):
            item = pending[row_id]
            if not done and (low_water is None or item.window_start - MATCH_BEFORE <= low_water):
                continue  # messages older than the scan's position may still fit it
            del pending[row_id]
            if item.spoiled or len(item.sids) != 1 or item.message is None:
                counts["ambiguous"] += 1
                continue
            matched = db.session.execute(
                sa.update(T)
                .where(T.c.id == row_id, T.c.twilio_sid.is_(None))
                .where(~sa.exists().where(T.c.twilio_sid == item.message.sid))
                .values(twilio_sid=item.message.sid)
            ).rowcount
            if not matched:
                counts["ambiguous"] += 1
                continue
            counts["matched"] += 1
            _apply(item.row, item.message, counts, prefix="list_")

    while True:
        if max_pages is not None and pages >= max_pages:
            return
        current = page_url
        result, limited, error = reader.call(
            lambda url=current: gateway.list_page(
                from_=sender, sent_after=since, page_size=page_size, page_url=url
            )
        )
        counts["rate_limited"] += limited
        if error is not None:
            counts["list_errors"] += 1
            counts["list_error"] = error[:200]
            return  # the cursor stays: the next run re-reads this page
        messages, next_url = result
        pages += 1
        page_index = len(page_urls)
        page_urls.append(current)
        counts["listed"] += len(messages)
        candidates = _candidates(messages, send)
        for message in messages:
            stamp = message.date_sent or message.date_created
            if stamp is not None and (low_water is None or stamp < low_water):
                low_water = stamp
            rows = candidates.get(message.sid)
            if rows is None:
                continue
            if any(row.twilio_sid == message.sid for row in rows):
                continue  # matched before (a resumed or repeated scan)
            open_rows = [r for r in rows if r.twilio_sid is None and r.status in OPEN_STATUSES]
            for row in open_rows:
                item = pending.setdefault(row.id, _Pending(row, row.window_start, page_index))
                item.sids.add(message.sid)
                item.message = message
                if len(rows) > 1:
                    item.spoiled = True
        decide(done=next_url is None)
        # Resume from the first page holding an undecided row (re-read: nothing is lost).
        resume = (
            page_urls[min(item.page for item in pending.values())] if pending else next_url
        ) or ""
        setting = _cursor(key, lock=True)
        if next_url is None:
            if setting is not None:
                db.session.delete(setting)
        elif setting is not None:
            setting.value = {**setting.value, "page_url": resume}
        db.session.commit()
        if on_progress is not None:
            on_progress(counts)
        if next_url is None:
            break
        page_url = next_url
    left = db.session.scalar(sa.select(sa.func.count()).select_from(T).where(*listable)) or 0
    counts["unmatched"] += max(0, left - counts["ambiguous"])


def reconcile_statuses(  # noqa: PLR0913 (knobs for tests and the benchmark)
    app: Flask,
    *,
    since_days: int = 7,
    send: Send | None = None,
    limit: int | None = None,
    chunk_size: int | None = None,
    workers: int = READ_WORKERS,
    max_429_retries: int = MAX_429_RETRIES,
    max_pages: int | None = None,
    page_size: int = LIST_PAGE_SIZE,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Both passes (module docstring); returns the counts. `send` limits it to one broadcast's
    or campaign's messages. The caller's session is committed after each chunk and page, and
    `on_progress(counts)` called right after."""
    counts: dict[str, Any] = {
        "checked": 0,
        "updated": 0,
        "unchanged": 0,
        "errors": 0,
        "rate_limited": 0,
        "missing": 0,
    }
    why_not = reconcile_unavailable(app.config)
    gateway = twilio_reader(app) if why_not is None else None
    if gateway is None:
        counts["skipped"] = why_not or "no Twilio credentials"
        return counts
    reader = _Reader(reads_bucket(app), max_429_retries, sleep)
    reconcile_by_sid(
        app,
        gateway,
        reader,
        counts,
        since_days=since_days,
        send=send,
        limit=limit,
        chunk_size=chunk_size or CHUNK_SIZE,  # read now: a test process may lower it
        workers=workers,
        on_progress=on_progress,
    )
    if app.config["MISSIVE_FROM_NUMBER"]:
        counts.update(
            listed=0,
            matched=0,
            list_updated=0,
            list_unchanged=0,
            list_errors=0,
            ambiguous=0,
            unmatched=0,
        )
        reconcile_missive_list(
            app,
            gateway,
            reader,
            counts,
            since_days=since_days,
            send=send,
            max_pages=max_pages,
            page_size=page_size,
            on_progress=on_progress,
        )
    return counts
