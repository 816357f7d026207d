"""Starting a broadcast: from "due" to every outbound row committed and sending enqueued.

    python -m bench.start_broadcast --contacts 100000 --segments 3

The tick's real path (`run_due_broadcast`: segment resolution with eligibility, ratios with
deduplication and the filler, the set-based insert, freezing, the next upcoming clone, stored
statistics, one commit) and then `enqueue_sending`, against a baseline measured in the same
run: one hand-written `INSERT … SELECT` of the same number of rows.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import sqlalchemy as sa
from redis import Redis

from bench.common import base_env, bench_database, emit, log, make_app, redis_url

REDIS_DB = 3
ZIPS = [f"482{n:02d}" for n in range(30)]


def seed(app, contacts: int, segments: int) -> int:
    from app.extensions import db
    from app.models import Broadcast, BroadcastSegment, BroadcastStatus, Segment, utcnow

    with app.app_context():
        db.session.execute(
            sa.text(
                "INSERT INTO contacts (phone, name, zip_code, attributes, unsubscribed, excluded, "
                "source, created_at, updated_at) "
                "SELECT '+1555' || lpad(g::text, 7, '0'), 'Reader ' || g, "
                "'482' || lpad((g % 30)::text, 2, '0'), '{}', g % 50 = 0, g % 97 = 0, "
                "CASE WHEN g % 40 = 0 THEN 'upload' ELSE 'conversation' END, now(), now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": contacts},
        )
        broadcast = Broadcast(
            first_message="Tonight: the council votes on the budget. Reply to ask us anything.",
            second_message="Did you catch it? Reply with your questions.",
            batch_size=contacts,
            status=BroadcastStatus.UPCOMING,
            scheduled_for=utcnow() - timedelta(minutes=1),
        )
        share = 100 // segments
        chunk = len(ZIPS) // segments
        for i in range(segments):
            zips = ZIPS[i * chunk : (i + 1) * chunk + 2]  # neighbouring segments overlap
            segment = Segment(
                name=f"Zips {i}", rule={"all": [{"type": "zip_code", "op": "in", "values": zips}]}
            )
            filler = i == segments - 1
            broadcast.segment_links.append(
                BroadcastSegment(
                    segment=segment, ratio=0 if filler else share, position=i, is_filler=filler
                )
            )
        db.session.add(broadcast)
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        return broadcast.id


def baseline(app, rows: int) -> float:
    from app.extensions import db

    with app.app_context():
        other = db.session.execute(
            sa.text(
                "INSERT INTO broadcasts (first_message, delay_seconds, batch_size, status, "
                "created_at, updated_at) VALUES ('baseline', 0, 1, 'sent', now(), now()) "
                "RETURNING id"
            )
        ).scalar_one()
        db.session.commit()
        started = time.perf_counter()
        db.session.execute(
            sa.text(
                "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                "sms_segments, attempts, created_at, updated_at) "
                "SELECT :b, id, 'first', 'baseline body', 'queued', 1, 0, now(), now() "
                "FROM contacts ORDER BY random() LIMIT :n"
            ),
            {"b": other, "n": rows},
        )
        db.session.commit()
        elapsed = time.perf_counter() - started
        db.session.execute(
            sa.text("DELETE FROM outbound_messages WHERE broadcast_id = :b"), {"b": other}
        )
        db.session.commit()
        return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=3)
    args = parser.parse_args(argv)
    redis = Redis.from_url(redis_url(REDIS_DB))
    redis.flushdb()
    try:
        with bench_database("bench_start_broadcast") as url:
            app = make_app(base_env(url, redis_url(REDIS_DB), BATCH_SIZE_MAX=1_000_000))
            broadcast_id = seed(app, args.contacts, args.segments)
            from app.broadcasts.services import run_due_broadcast
            from app.extensions import db
            from app.jobs.sending import enqueue_sending

            with app.app_context():
                started = time.perf_counter()
                result = run_due_broadcast(zone=app.config["APP_TIMEZONE"], catch_up_minutes=60)
                enqueued = enqueue_sending(app)
                seconds = time.perf_counter() - started
                db.session.remove()
            assert result.get("broadcast_started") == broadcast_id, result
            rows = result["recipients"]
            log(f"started: {result}, {enqueued} drain jobs enqueued in {seconds:.3f} s")
            base = baseline(app, rows)
            emit(
                {
                    "benchmark": "start_broadcast",
                    "contacts": args.contacts,
                    "segments": args.segments,
                    "recipients": rows,
                    "seconds": round(seconds, 3),
                    "baseline_seconds": round(base, 3),
                    "ratio": round(seconds / base, 2),
                    "target_seconds": 1.5,
                    "target_ratio": 2.0,
                }
            )
    finally:
        redis.flushdb()


if __name__ == "__main__":
    main()
