"""Segments: who is eligible (SPEC 3.2), resolving and counting a segment, raw SQL, saving.

`resolve_segment_contact_ids` and `count_segment_contacts` are the one code path from a segment
to its contacts: the builder's live count, campaign estimates and real sends all go through them,
so the numbers agree and eligibility can never be forgotten by a rule or a query.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from app.audit.services import record_audit
from app.extensions import db
from app.models import (
    BroadcastSegment,
    Contact,
    ContactSource,
    MissiveLabel,
    Segment,
    Upload,
    UploadStatus,
    User,
    utcnow,
)
from app.segments.rules import CompileContext, compile_rule, iter_conditions, validate_rule
from app.segments.sql_guard import check_segment_sql
from app.validation import ValidationError

RAW_SQL_WORK_MEM = "4MB"
RAW_SQL_TIMEOUT_MS = 5_000
RAW_SQL_COUNT_CACHE_SECONDS = 60
SEGMENT_SCHEMA = "segment_data"  # the views raw SQL reads (migration 0005)
SAMPLE_SIZE = 10


class Audience(enum.StrEnum):
    """What the contacts are for: broadcasts also skip contacts that only came from an upload."""

    BROADCAST = "broadcast"
    CAMPAIGN = "campaign"


def eligibility_clause(purpose: Audience | str) -> sa.ColumnElement[bool]:
    """SPEC 3.2: never unsubscribed or excluded; for broadcasts, never `source = upload`."""
    clause = sa.and_(Contact.unsubscribed.is_(False), Contact.excluded.is_(False))
    if Audience(purpose) is Audience.BROADCAST:
        clause = sa.and_(clause, Contact.source != ContactSource.UPLOAD)
    return clause


def _context(now: datetime | None) -> CompileContext:
    return CompileContext(now=now or utcnow(), zone=ZoneInfo(current_app.config["APP_TIMEZONE"]))


def rule_contacts_select(
    rule: dict[str, Any], *, purpose: Audience | str, now: datetime | None = None
) -> sa.Select[tuple[int]]:
    """`SELECT contacts.id` for the eligible contacts matching a rule (checked here first)."""
    clause = compile_rule(validate_rule(rule), _context(now))
    return sa.select(Contact.id).where(eligibility_clause(purpose), clause)


def resolve_segment_contact_ids(
    segment: Segment, *, purpose: Audience | str, now: datetime | None = None
) -> list[int]:
    """The ids (ascending) of the eligible contacts a segment selects for `purpose`.

    `purpose` is `Audience.BROADCAST` (also skips `source = upload` contacts) or
    `Audience.CAMPAIGN`. Rule segments compile to one query; raw SQL segments run read-only with
    a statement timeout and their `phone_number`s are intersected with eligible contacts. `now`
    anchors "in the last N days" (default: now). Raises ValidationError for a rule or query that
    no longer works (say, a raw SQL segment naming a dropped column).
    """
    if segment.raw_sql:
        return _run_raw_sql(segment.raw_sql, purpose, count_only=False)  # type: ignore[return-value]
    query = rule_contacts_select(segment.rule, purpose=purpose, now=now).order_by(Contact.id)
    # Plain rows, not ORM-processed ones: a broadcast resolves 100,000 ids (4x faster).
    db.session.flush()
    return list(db.session.connection().execute(query).scalars())


def count_segment_contacts(
    segment: Segment,
    *,
    purpose: Audience | str,
    now: datetime | None = None,
    cache: CountCache | None = None,
) -> int:
    """How many contacts `resolve_segment_contact_ids` would return, counted in the database
    (a raw SQL segment's count comes from `cache` when it was counted in the last minute)."""
    if segment.raw_sql:
        return count_raw_sql(segment.raw_sql, purpose, cache=cache)
    return count_rule_contacts(segment.rule, purpose=purpose, now=now)


def count_rule_contacts(
    rule: dict[str, Any], *, purpose: Audience | str, now: datetime | None = None
) -> int:
    query = rule_contacts_select(rule, purpose=purpose, now=now)
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


@dataclass
class Preview:
    """What the builder shows while a rule is edited."""

    broadcast_count: int
    campaign_count: int
    sample: list[Contact]


def preview_rule(rule: dict[str, Any], *, now: datetime | None = None) -> Preview:
    """Counts for broadcasts and campaigns plus a few matching contacts (ValidationError if bad)."""
    checked = validate_rule(rule)
    ids = rule_contacts_select(checked, purpose=Audience.CAMPAIGN, now=now)
    sample = list(
        db.session.scalars(
            sa.select(Contact).where(Contact.id.in_(ids.limit(SAMPLE_SIZE))).order_by(Contact.id)
        )
    )
    return Preview(
        broadcast_count=count_rule_contacts(checked, purpose=Audience.BROADCAST, now=now),
        campaign_count=count_rule_contacts(checked, purpose=Audience.CAMPAIGN, now=now),
        sample=sample,
    )


# --- raw SQL (SPEC 3.3) -----------------------------------------------------------------------


def clean_raw_sql(sql: str) -> str:
    """The admin's query as it is stored (trimmed, no trailing semicolon), once sql_guard allows
    it: one SELECT over the tables and columns segments may read. ValidationError otherwise."""
    check_segment_sql(sql)
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _reader_role() -> str:
    # Like the time zone in _context: read here so every caller (broadcasts, campaigns, the
    # builder) runs raw SQL as the same role without passing it along.
    return current_app.config.get("SEGMENT_READER_ROLE", "")


SETUP_HINT = 'see "Raw SQL segments" in the README'

# Run as the app's user, before switching: does the role exist, may it use the views' schema,
# and can it read nothing else (not a superuser, no SELECT on a table of the app's schema)?
_ROLE_CHECK = sa.text(
    """
    SELECT n.oid IS NOT NULL AND has_schema_privilege(r.oid, n.oid, 'USAGE') AS can_use,
           r.rolsuper OR EXISTS (
             SELECT 1 FROM pg_class c
             WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND has_table_privilege(r.oid, c.oid, 'SELECT')
           ) AS reads_more
    FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = :schema
    WHERE r.rolname = :role
    """
)


def _check_reader_role(role: str) -> str:
    """The role, quoted for SET ROLE, once it is known to read only `segment_data`; else a
    ValidationError saying what is missing. Raw SQL never runs as the app's own user."""
    if not role:
        raise ValidationError(
            f"Raw SQL segments are turned off: SEGMENT_READER_ROLE is empty ({SETUP_HINT}).",
            field="raw_sql",
        )
    row = db.session.execute(_ROLE_CHECK, {"role": role, "schema": SEGMENT_SCHEMA}).one_or_none()
    if row is None:
        problem = f"the database role {role} does not exist"
    elif not row.can_use:
        problem = f"the database role {role} may not read the {SEGMENT_SCHEMA} schema"
    elif row.reads_more:
        problem = f"the database role {role} can read more than segments need"
    else:
        return db.session.get_bind().dialect.identifier_preparer.quote_identifier(role)
    raise ValidationError(
        f"Raw SQL segments are refused: {problem} ({SETUP_HINT}).", field="raw_sql"
    )


def _become_reader(quoted_role: str) -> None:
    """Inside the raw SQL savepoint: only the segment views, as the reader role, with a timeout.
    Said again before each statement, so nothing an earlier one did can carry over."""
    db.session.execute(sa.text(f"SET LOCAL statement_timeout = {RAW_SQL_TIMEOUT_MS}"))
    # Sorts and hashes spill to disk early instead of growing in memory (the timeout bounds
    # time, not memory).
    db.session.execute(sa.text(f"SET LOCAL work_mem = '{RAW_SQL_WORK_MEM}'"))
    db.session.execute(sa.text(f"SET LOCAL ROLE {quoted_role}"))
    db.session.execute(sa.text(f"SET LOCAL search_path = {SEGMENT_SCHEMA}, pg_catalog, pg_temp"))


# What went wrong, by SQLSTATE; PostgreSQL's own message is never shown (it can quote values).
_SQLSTATE_MESSAGES = {
    "25006": "The query tries to change data. A segment may only read (use SELECT).",
    "42501": "The query reads or calls something segments may not read (permission denied).",
    "42P01": "The query reads a table that segments may not read.",
    "42883": (
        "The query calls a function or operator that does not exist for these types "
        "(add a cast, for example ::text)."
    ),
    "42702": "A column name is ambiguous: put its table or alias in front (c.id).",
    "42803": "Every selected column must be in GROUP BY or inside an aggregate such as count().",
    "42804": "The query mixes values of different types: add a cast (for example ::text).",
    "42601": "The query has a syntax error.",
    "22P02": "A value could not be read as the type asked for: check the casts and comparisons.",
    "22007": "A date or time could not be read: check the format of the dates in the query.",
    "22008": "A date or time is out of range.",
    "22012": "The query divides by zero.",
    "2201B": "A regular expression in the query is not valid.",
    "54001": "The query is too complex: simplify it.",
}


def _raw_sql_error(exc: DBAPIError) -> ValidationError:
    code = getattr(exc.orig, "sqlstate", None) or ""
    if code == "57014":
        message = (
            f"The query took longer than {RAW_SQL_TIMEOUT_MS // 1000} seconds and was stopped. "
            "Simplify it or add a condition."
        )
    elif code == "42703":
        # "column x does not exist" names the admin's identifier only; keep just that.
        found = re.search(r'column "?([\w.]+)"? does not exist', str(exc.orig))
        name = f" {found.group(1)[:63]}" if found else ""
        message = f"Unknown column{name}: the query names a column segments cannot read."
    elif code in _SQLSTATE_MESSAGES:
        message = _SQLSTATE_MESSAGES[code]
    elif code.startswith("22"):
        message = f"The query failed on one of its values (SQLSTATE {code})."
    elif code.startswith(("53", "54")):
        message = f"The query needs more than the database allows (SQLSTATE {code}): simplify it."
    else:
        message = f"The query failed (SQLSTATE {code or 'unknown'})."
    return ValidationError(message, field="raw_sql")


def _run_raw_sql(sql: str, purpose: Audience | str, *, count_only: bool) -> int | list[int]:
    """Run an admin's SELECT as the segment reader role, read-only, with a timeout; the eligible
    matching ids, or their count.

    sql_guard checks the query first and what runs is its reprint; the reader role (migration
    0005) sees only the `segment_data` views, which `search_path` puts first, so `contacts`
    means the view, for the query and for the eligibility filter around it. It all happens in
    a savepoint that is always rolled back, so neither the role, the read-only mode nor the
    timeout outlive it, and whatever the query might have done is undone.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        raise ValidationError("Raw SQL segments need PostgreSQL.", field="raw_sql")
    text = check_segment_sql(sql).replace(":", r"\:")  # every colon is the query's own, not a bind
    raw = sa.text(text).columns(sa.column("phone_number")).subquery("raw_segment")
    phone = sa.cast(raw.c.phone_number, sa.Text)
    plus_phone = sa.case((phone.startswith("+"), phone), else_="+" + phone)
    ids = sa.select(Contact.id).where(
        eligibility_clause(purpose), Contact.phone.in_(sa.select(plus_phone))
    )
    savepoint = db.session.begin_nested()
    try:
        db.session.execute(sa.text("SET TRANSACTION READ ONLY"))
        role = _check_reader_role(_reader_role())
        try:
            _become_reader(role)
        except DBAPIError:
            raise ValidationError(
                f"Raw SQL segments are refused: the app's database user may not switch to the "
                f"role {_reader_role()} ({SETUP_HINT}).",
                field="raw_sql",
            ) from None
        columns = list(db.session.execute(sa.select(sa.text("*")).select_from(raw).limit(0)).keys())
        if "phone_number" not in columns:
            raise ValidationError(
                "The query must return a column named phone_number "
                f"(it returns: {', '.join(columns) or 'no columns'}).",
                field="raw_sql",
            )
        _become_reader(role)
        if count_only:
            return db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery())) or 0
        return list(db.session.scalars(ids.order_by(Contact.id)))
    except DBAPIError as exc:
        raise _raw_sql_error(exc) from None
    finally:
        savepoint.rollback()


def check_raw_sql(sql: str) -> int:
    """Validate a raw SQL segment by running it; returns its count of eligible broadcast contacts."""
    return _run_raw_sql(sql, Audience.BROADCAST, count_only=True)  # type: ignore[return-value]


@dataclass(frozen=True)
class CountCache:
    """Raw SQL counts kept for a minute in Redis, keyed by the checked query and the purpose: a
    list of segments counted by several people runs each query once a minute. Only counts are
    kept; what a send resolves is always fresh."""

    redis: Redis
    prefix: str
    seconds: int = RAW_SQL_COUNT_CACHE_SECONDS

    def key(self, sql: str, purpose: Audience | str) -> str:
        digest = hashlib.sha256(f"{Audience(purpose).value}\n{sql}".encode()).hexdigest()
        return f"{self.prefix}:segment-count:{digest}"

    def get(self, key: str) -> int | None:
        try:
            value = self.redis.get(key)
        except RedisError:
            return None  # Redis down: count in the database, as without a cache
        return int(value) if value is not None else None

    def put(self, key: str, count: int) -> None:
        with contextlib.suppress(RedisError):
            self.redis.set(key, count, ex=self.seconds)


def count_raw_sql(sql: str, purpose: Audience | str, *, cache: CountCache | None = None) -> int:
    """How many eligible contacts a raw SQL query selects for `purpose`, from `cache` when it was
    counted in the last minute."""
    if cache is None:
        return _run_raw_sql(sql, purpose, count_only=True)  # type: ignore[return-value]
    key = cache.key(check_segment_sql(sql), purpose)
    count = cache.get(key)
    if count is None:
        count = _run_raw_sql(sql, purpose, count_only=True)
        cache.put(key, count)  # type: ignore[arg-type]
    return count  # type: ignore[return-value]


# --- saving -----------------------------------------------------------------------------------


def segments_query(search: str = "") -> sa.Select[tuple[Segment]]:
    query = sa.select(Segment).order_by(sa.func.lower(Segment.name))
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(
            sa.or_(
                sa.func.lower(Segment.name).like(pattern),
                sa.func.lower(Segment.description).like(pattern),
            )
        )
    return query


def _check_name(name: str, segment: Segment | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the segment a name.", field="name")
    clash = db.session.scalar(
        sa.select(Segment.id).where(sa.func.lower(Segment.name) == name.lower())
    )
    if clash is not None and (segment is None or clash != segment.id):
        raise ValidationError("Another segment already has this name.", field="name")
    return name


def save_segment(
    segment: Segment | None,
    *,
    name: str,
    description: str,
    rule: dict[str, Any] | None = None,
    raw_sql: str | None = None,
    user: User | None,
    ip_address: str | None = None,
    zip_region: str = "",
    notes: list[str] | None = None,
) -> Segment:
    """Create (segment=None) or update a rule or raw SQL segment, audited. Checks everything first:
    a bad name, rule or query raises ValidationError and changes nothing. Zip codes are checked
    for `zip_region`; with a `notes` list, a builder draft's unchosen conditions and empty
    groups are dropped and noted (see rules.validate_rule)."""
    name = _check_name(name, segment)
    if raw_sql is not None:
        raw_sql = clean_raw_sql(raw_sql)
        check_raw_sql(raw_sql)
        rule = {"all": []}
    else:
        rule = validate_rule(rule if rule is not None else {"all": []}, zip_region, notes)
    creating = segment is None
    if segment is None:
        segment = Segment(created_by_id=user.id if user else None)
        db.session.add(segment)
    segment.name = name
    segment.description = (description or "").strip()
    segment.rule = rule
    segment.raw_sql = raw_sql
    db.session.flush()
    record_audit(
        "segment_create" if creating else "segment_update",
        user=user,
        obj=segment,
        summary=f"{'Created' if creating else 'Saved'} segment {segment.name}",
        details={"rule": rule, "raw_sql": raw_sql},
        ip_address=ip_address,
    )
    return segment


def delete_segment(segment: Segment, *, user: User | None, ip_address: str | None = None) -> None:
    """Delete a segment no broadcast uses (ValidationError names the reason otherwise), audited."""
    in_use = db.session.scalar(
        sa.select(sa.func.count()).where(BroadcastSegment.segment_id == segment.id)
    )
    if in_use:
        raise ValidationError(
            "Broadcasts use this segment: remove it from them first, then delete it."
        )
    record_audit(
        "segment_delete",
        user=user,
        obj=segment,
        summary=f"Deleted segment {segment.name}",
        ip_address=ip_address,
    )
    db.session.delete(segment)
    db.session.flush()


# --- choices for the builder -----------------------------------------------------------------


def label_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        sa.select(MissiveLabel.id, MissiveLabel.name).order_by(MissiveLabel.name)
    )
    return [(row.id, row.name) for row in rows]


def upload_choices(limit: int = 100) -> list[tuple[int, str]]:
    rows = db.session.execute(
        sa.select(Upload.id, Upload.filename, Upload.created_at)
        .where(Upload.status == UploadStatus.DONE)
        .order_by(Upload.id.desc())
        .limit(limit)
    )
    return [(row.id, f"#{row.id} {row.filename}") for row in rows]


def label_names(rule: dict[str, Any]) -> dict[int, str]:
    ids = {c["label_id"] for c in iter_conditions(rule) if c["type"] == "has_label"}
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(MissiveLabel.id, MissiveLabel.name).where(MissiveLabel.id.in_(ids))
    )
    return {row.id: row.name for row in rows}
