"""Server time of the broadcast pages with a 1,000,000-message broadcast in the database.

    python -m bench.stats --messages 1000000

Seeds half a million contacts, one finished broadcast with a first and a follow-up message to
each (statuses, error codes and replies spread as in real sends), and 25 smaller broadcasts for
the history; then times the detail page of the big broadcast and the history list through the
real app (signed in, as a browser would ask), and prints their p50/p95. The baseline, measured in
the same run: one `GROUP BY status` over the big broadcast's rows, what a page would cost if
it counted instead of reading the stored statistics.
"""

from __future__ import annotations

import argparse
import statistics
import time

import sqlalchemy as sa

from bench.common import base_env, bench_database, emit, log, make_app, redis_url

REDIS_DB = 2
PASSWORD = "bench-password-123"


def seed(app, messages: int) -> int:
    from app.extensions import db
    from app.sends.stats import finish_sends

    contacts = messages // 2
    with app.app_context():
        conn = db.session
        conn.execute(
            sa.text(
                "INSERT INTO contacts (phone, zip_code, attributes, unsubscribed, excluded, source, "
                "created_at, updated_at) SELECT '+1555' || lpad(g::text, 7, '0'), '48201', '{}', "
                "false, false, 'conversation', now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": contacts},
        )
        for i in range(26):
            conn.execute(
                sa.text(
                    "INSERT INTO broadcasts (first_message, second_message, delay_seconds, "
                    "batch_size, status, started_at, created_at, updated_at) VALUES "
                    "(:m, 'Follow-up', 600, 1000, 'sending', now() - make_interval(days => :d), "
                    "now(), now())"
                ),
                {"m": f"Broadcast {i}: the news of the day", "d": 26 - i},
            )
        big = conn.execute(sa.text("SELECT max(id) FROM broadcasts")).scalar_one()
        # The big one: every contact gets step one; step two for each, with varied outcomes.
        for step in ("first", "second"):
            conn.execute(
                sa.text(
                    "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                    "provider_sid, error_code, sms_segments, attempts, sent_at, created_at, "
                    "updated_at) SELECT :b, id, CAST(:step AS varchar), 'Body', "
                    "CASE WHEN id % 20 = 0 THEN 'undelivered' WHEN id % 33 = 0 THEN 'failed' "
                    "WHEN id % 7 = 0 THEN 'sent' ELSE 'delivered' END, "
                    "'SM' || :step || id, "
                    "CASE WHEN id % 20 = 0 THEN '30003' WHEN id % 33 = 0 THEN '30007' END, "
                    "1, 1, now(), now(), now() FROM contacts"
                ),
                {"b": big, "step": step},
            )
        # The small ones: 200 messages each.
        conn.execute(
            sa.text(
                "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                "sms_segments, attempts, created_at, updated_at) "
                "SELECT b.id, c.id, 'first', 'Body', 'delivered', 1, 1, now(), now() "
                "FROM broadcasts b CROSS JOIN (SELECT id FROM contacts LIMIT 200) c "
                "WHERE b.id <> :b"
            ),
            {"b": big},
        )
        conn.execute(
            sa.text(
                "INSERT INTO inbound_messages (provider_id, provider, phone, body, received_at, "
                "contact_id, reply_to_id, created_at) SELECT 'IN' || m.id, 'twilio', c.phone, "
                "'Thanks!', now(), c.id, m.id, now() FROM outbound_messages m "
                "JOIN contacts c ON c.id = m.contact_id "
                "WHERE m.broadcast_id = :b AND m.step = 'first' AND m.contact_id % 11 = 0"
            ),
            {"b": big},
        )
        db.session.commit()
        conn.execute(sa.text("ANALYZE"))
        started = time.perf_counter()
        finish_sends()  # stores each broadcast's statistics, as the tick does
        log(f"statistics of 26 broadcasts computed in {time.perf_counter() - started:.2f} s")
        from werkzeug.security import generate_password_hash

        from app.models import Role, User

        db.session.add(
            User(
                email="bench@example.org",
                role=Role.VIEWER,
                password_hash=generate_password_hash(PASSWORD),
            )
        )
        db.session.commit()
        return big


def timed(client, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=20)[18], 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args(argv)
    with bench_database("bench_stats") as url:
        app = make_app(base_env(url, redis_url(REDIS_DB), WTF_CSRF_ENABLED="false"))
        app.config["WTF_CSRF_ENABLED"] = False
        started = time.perf_counter()
        big = seed(app, args.messages)
        log(f"seeded {args.messages:,} messages in {time.perf_counter() - started:.0f} s")
        client = app.test_client()
        login = client.post(
            "/auth/login", data={"email": "bench@example.org", "password": PASSWORD}
        )
        assert login.status_code == 302, login.status_code
        timed(client, f"/broadcasts/{big}", 3)  # warm up
        detail = timed(client, f"/broadcasts/{big}", args.runs)
        history = timed(client, "/broadcasts/", args.runs)
        from app.extensions import db

        with app.app_context():
            base = []
            for _ in range(5):
                t = time.perf_counter()
                db.session.execute(
                    sa.text(
                        "SELECT status, count(*) FROM outbound_messages WHERE broadcast_id = :b "
                        "GROUP BY status"
                    ),
                    {"b": big},
                ).all()
                base.append((time.perf_counter() - t) * 1000)
            db.session.remove()
        emit(
            {
                "benchmark": "stats",
                "messages": args.messages,
                "detail_p50_ms": round(statistics.median(detail), 1),
                "detail_p95_ms": p95(detail),
                "history_p50_ms": round(statistics.median(history), 1),
                "history_p95_ms": p95(history),
                "group_by_baseline_ms": round(statistics.median(base), 1),
                "target_p95_ms": 50,
            }
        )


if __name__ == "__main__":
    main()
