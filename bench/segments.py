"""Benchmark: count and resolve a three-condition segment on a generated audience.

    python -m bench.segments --contacts 200000

Creates its own PostgreSQL database on DATABASE_URL's server (default: local PostgreSQL) with
`--contacts` contacts, Missive conversations and labels (some removed, some re-applied), and
inbound replies over half a year, then counts and resolves
`all [has_label L since 90 days ago, replied_within_days 30, zip_code in 5 zips]` through the app's
own services (eligibility included). Prints one JSON line with count_ms and resolve_ms (medians)
and the indexes the query plans use; the plans themselves go to stderr.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy.engine import make_url

from bench.common import base_env, bench_database, emit, log, make_app, redis_url

TARGET_COUNT_MS = 200
TARGET_RESOLVE_MS = 1000
ZIPS = [f"482{n:02d}" for n in range(1, 11)]
LABELS = 30
RUNS = 7


def _copy(conn: psycopg.Connection, table: str, columns: str, rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def generate(url: str, contacts: int, seed: int = 11) -> None:
    """The audience, written with COPY: contacts, conversations, labels, links and replies."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:

        def contact_row(i: int):
            roll = rng.random()
            created = now - timedelta(days=rng.randint(0, 900))
            return (
                f"+1313{2_000_000 + i}",
                rng.choice(ZIPS),
                "{}",
                "t" if roll < 0.05 else "f",  # unsubscribed
                "t" if 0.05 <= roll < 0.07 else "f",  # excluded
                "upload" if 0.07 <= roll < 0.15 else "conversation",
                created.isoformat(),
                created.isoformat(),
            )

        _copy(
            conn,
            "contacts",
            "phone, zip_code, attributes, unsubscribed, excluded, source, created_at, updated_at",
            (contact_row(i) for i in range(contacts)),
        )
        _copy(
            conn,
            "missive_labels",
            "id, missive_id, name, created_at, updated_at",
            ((n, f"label-{n}", f"Label {n}", now, now) for n in range(1, LABELS + 1)),
        )
        # Two contacts in three have a conversation; each carries 0-4 labels.
        with_conversation = [i + 1 for i in range(contacts) if rng.random() < 0.66]
        _copy(
            conn,
            "missive_conversations",
            "id, missive_id, contact_id, phone, closed, created_at, updated_at",
            (
                (n, f"conv-{n}", cid, None, "f", now, now)
                for n, cid in enumerate(with_conversation, 1)
            ),
        )
        links = []
        for conversation in range(1, len(with_conversation) + 1):
            for label in rng.sample(range(1, LABELS + 1), rng.randint(0, 4)):
                first = now - timedelta(days=rng.randint(0, 400))
                last = first + timedelta(days=rng.randint(0, 30))
                removed = rng.random() < 0.15
                links.append(
                    (conversation, label, first, min(last, now), "t" if removed else "f", None)
                )
        _copy(
            conn,
            "missive_conversation_labels",
            "conversation_id, label_id, first_applied_at, last_applied_at, removed, removed_at",
            links,
        )
        # Replies: about 1.5 per contact over 180 days; a few are keywords.
        replies = int(contacts * 1.5)
        _copy(
            conn,
            "inbound_messages",
            "provider_id, provider, phone, body, received_at, contact_id, keyword, created_at",
            (
                (
                    f"SM{n}",
                    "twilio",
                    "+1",
                    "thanks",
                    (now - timedelta(minutes=rng.randint(0, 180 * 24 * 60))).isoformat(),
                    rng.randint(1, contacts),
                    "stop" if rng.random() < 0.02 else None,
                    now.isoformat(),
                )
                for n in range(replies)
            ),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    log(f"generated {contacts:,} contacts, {len(links):,} label links, {replies:,} replies")


def _time_ms(fn) -> tuple[float, object]:
    fn()  # warm the cache and the plan
    times, result = [], None
    for _ in range(RUNS):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1), result


def _explain(session, query) -> str:
    """EXPLAIN ANALYZE of a SQLAlchemy query, run through the driver with its own parameters."""
    compiled = query.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {compiled}", compiled.params)
    plan = "\n".join(row[0] for row in cursor.fetchall())
    cursor.close()
    return plan


def measure(app) -> dict:
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Segment
    from app.segments.services import (
        Audience,
        count_segment_contacts,
        resolve_segment_contact_ids,
        rule_contacts_select,
    )

    since = (datetime.now(UTC) - timedelta(days=90)).date().isoformat()
    rule = {
        "all": [
            {"type": "has_label", "label_id": 7, "since": since},
            {"type": "replied_within_days", "days": 30},
            {"type": "zip_code", "op": "in", "values": ZIPS[:5]},
        ]
    }
    with app.app_context():
        segment = Segment(name="bench", rule=rule)
        count_ms, count = _time_ms(
            lambda: count_segment_contacts(segment, purpose=Audience.BROADCAST)
        )
        resolve_ms, ids = _time_ms(
            lambda: resolve_segment_contact_ids(segment, purpose=Audience.BROADCAST)
        )
        broad = {"all": [{"type": "replied_within_days", "days": 90}]}
        broad_ms, broad_ids = _time_ms(
            lambda: resolve_segment_contact_ids(
                Segment(name="broad", rule=broad), purpose=Audience.CAMPAIGN
            )
        )
        select = rule_contacts_select(rule, purpose=Audience.BROADCAST)
        plans = {
            "count": _explain(
                db.session, sa.select(sa.func.count()).select_from(select.subquery())
            ),
            "resolve": _explain(db.session, select.order_by(sa.text("1"))),
        }
        db.session.remove()
        db.engine.dispose()
    for name, plan in plans.items():
        log(f"--- EXPLAIN {name} ---\n{plan}")
    indexes = sorted(set(re.findall(r"Index (?:Only )?Scan (?:using|on) (\w+)", plans["count"])))
    return {
        "count_ms": count_ms,
        "resolve_ms": resolve_ms,
        "matched": count,
        "resolved": len(ids),
        "broad_resolve_ms": broad_ms,
        "broad_resolved": len(broad_ids),
        "count_plan_indexes": indexes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--database", default="bench_segments")
    args = parser.parse_args(argv)
    with bench_database(args.database) as url:
        started = time.perf_counter()
        generate(url, args.contacts)
        log(f"data ready in {time.perf_counter() - started:.1f}s")
        result = measure(make_app(base_env(url, redis_url(10))))
    emit(
        {
            "bench": "segments",
            "contacts": args.contacts,
            **result,
            "target_count_ms": TARGET_COUNT_MS,
            "target_resolve_ms": TARGET_RESOLVE_MS,
            "ok": result["count_ms"] <= TARGET_COUNT_MS
            and result["resolve_ms"] <= TARGET_RESOLVE_MS,
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
