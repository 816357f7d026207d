"""Status reconciliation: the daily job against a fake Twilio, versus the bare twilio client.

    python -m bench.reconcile --messages 50000 [--reads-per-second 60] [--latency-ms 50]

`--messages` open (`sent`) Twilio messages of the last 7 days are committed in PostgreSQL (its
own database, `broadcaster_bench_recon`; Redis database 40 of REDIS_URL's server), each held by
a fake Twilio (another process; 50 ms per answer; its read limit is the same pace, beyond which
it answers 429 with Retry-After) with a final status of its own (delivered, undelivered,
failed, still sent, read, and a value outside every enum). Then, in the same run:

* ours: `maintenance.reconcile_statuses_job()` as a worker runs it (the thread pool of 4, the
  Redis read pace, chunks committed with the cursor, statuses applied through
  `apply_status_update`, progress published on the job run);
* raw: the bare twilio client fetching the same SIDs with the same 4 threads and the same pace
  (the same Redis token bucket), 429s waited out the same way, nothing written anywhere.

Twilio's real read pace is 20 a second (TWILIO_READS_PER_SECOND's default), at which 50,000
messages take 42 minutes a side; the benchmark raises the pace for both sides equally
(`--reads-per-second`, default 60, printed as `reads_per_second`: with 4 threads and 50 ms per
answer, about 80 a second is the most either side can reach) and takes a smaller `--messages`
for a quick run.

Prints one JSON line: `seconds` (ours), `raw_seconds`, `ratio` (raw / ours; target >= 0.7),
`updated`, `wrong` (rows whose provider status differs from what the fake holds for their SID;
target 0), `peak_rss_mb` (this process's peak resident memory after our run, seeding included;
target <= 200), and the 429s each side met.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from redis import Redis

from bench.common import bench_database, emit, log, make_app, redis_url, rss_mb, twilio_env
from tests.fakes.server import start_fake_process

REDIS_DB = 40
DATABASE = "broadcaster_bench_recon"
WORKERS = 4
BATCH = 5000
# What the fake holds at the end, by share: (status, error code).
OUTCOMES = [
    (("delivered", None), 80),
    (("undelivered", 30003), 8),
    (("failed", 30008), 2),
    (("sent", None), 8),
    (("read", None), 1),
    (("teleported", None), 1),  # a value outside every enum: stored, never a crash
]


def seed(app, fake, count: int, rng: random.Random) -> None:
    """`count` contacts, one broadcast, one `sent` first message each, held by the fake."""
    from app.extensions import db

    outcomes = [o for o, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    sids: list[str] = []
    for start in range(0, count, BATCH):
        messages = []
        for n in range(start + 1, min(count, start + BATCH) + 1):
            status, code = rng.choices(outcomes, weights)[0]
            messages.append(
                {"to": f"+1555{n:07d}", "body": "Bench", "status": status, "error_code": code}
            )
        sids.extend(fake.control.post("add_messages", {"messages": messages})["sids"])
    with app.app_context():
        db.session.execute(
            sa.text(
                "INSERT INTO contacts (phone, name, zip_code, attributes, unsubscribed, "
                "excluded, source, created_at, updated_at) "
                "SELECT '+1555' || lpad(g::text, 7, '0'), 'Bench ' || g, '48201', '{}', "
                "false, false, 'conversation', now(), now() FROM generate_series(1, :n) AS g"
            ),
            {"n": count},
        )
        broadcast_id = db.session.execute(
            sa.text(
                "INSERT INTO broadcasts (first_message, delay_seconds, batch_size, status, "
                "created_at, updated_at) VALUES ('Bench', 0, :n, 'sending', now(), now()) "
                "RETURNING id"
            ),
            {"n": count},
        ).scalar_one()
        db.session.execute(
            sa.text(
                "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                "transport, provider_sid, provider_status, attempts, sms_segments, claimed_at, "
                "sent_at, created_at, updated_at) "
                "SELECT :b, c.id, 'first', 'Bench', 'sent', 'twilio', s.sid, 'sent', 1, 1, "
                "now() - interval '1 hour', now() - interval '1 hour', "
                "now() - interval '1 hour', now() - interval '1 hour' "
                "FROM unnest(CAST(:sids AS text[])) WITH ORDINALITY AS s(sid, n) "
                "JOIN contacts c ON c.phone = '+1555' || lpad(s.n::text, 7, '0')"
            ),
            {"b": broadcast_id, "sids": sids},
        )
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        db.session.remove()


def ours(app) -> tuple[float, dict]:
    from app.jobs.maintenance import reconcile_statuses_job

    with app.app_context():
        started = time.perf_counter()
        counts = reconcile_statuses_job()
        seconds = time.perf_counter() - started
    return seconds, counts


def raw(app, fake_url: str, sids: list[str], rate: float) -> tuple[float, int]:
    """The bare twilio client: the same SIDs, threads and pace (the same Redis token bucket,
    on a key of its own), 429s waited out as ours does. Returns (seconds, 429s met)."""
    from twilio.base.exceptions import TwilioRestException

    from app.extensions import get_redis
    from app.sending.pacing import TokenBucket
    from tests.fakes.twilio import twilio_client

    with app.app_context():
        bucket = TokenBucket(get_redis(app), "bench:raw:reads", rate)
    client = twilio_client(fake_url, timeout=20.0)
    limited = 0
    lock = threading.Lock()

    def fetch(sid: str) -> str:
        nonlocal limited
        tries = 0
        while True:
            bucket.acquire()
            try:
                return client.messages(sid).fetch().status
            except TwilioRestException as exc:
                if exc.status != 429 or tries >= 5:
                    raise
                tries += 1
                with lock:
                    limited += 1
                time.sleep(1.0 * tries)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        statuses = list(pool.map(fetch, sids))
    seconds = time.perf_counter() - started
    assert len(statuses) == len(sids)
    return seconds, limited


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--reads-per-second", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    rate = args.reads_per_second
    # The bare client logs every request at INFO: quiet, so the baseline pays no log writes.
    logging.getLogger("twilio").setLevel(logging.WARNING)

    fake = start_fake_process("twilio", latency_ms=args.latency_ms, read_max_rps=rate)
    redis = Redis.from_url(redis_url(REDIS_DB))
    redis.flushdb()
    try:
        with bench_database(DATABASE) as url:
            env = twilio_env(url, redis_url(REDIS_DB), fake.url, TWILIO_READS_PER_SECOND=rate)
            app = make_app(env)
            log(f"seeding {args.messages:,} messages")
            seed(app, fake, args.messages, random.Random(args.seed))
            limited_before = fake.control.stats()["reads_rate_limited"]

            log(f"ours: reconcile_statuses_job at {rate:g} reads/s")
            seconds, counts = ours(app)
            peak = rss_mb(os.getpid(), "VmHWM")
            limited_ours = fake.control.stats()["reads_rate_limited"] - limited_before

            held = fake.control.get("statuses")
            from app.extensions import db

            with app.app_context():
                rows = db.session.execute(
                    sa.text("SELECT provider_sid, provider_status FROM outbound_messages")
                ).all()
                db.session.remove()
            wrong = sum(1 for sid, status in rows if held.get(sid) != status)
            sids = [sid for sid, _ in rows]

            time.sleep(1.0)  # the fake's read bucket refills
            log("raw: the twilio client alone")
            raw_seconds, limited_raw = raw(app, fake.url, sids, rate)
            with app.app_context():
                db.engine.dispose()
    finally:
        fake.stop()
        redis.flushdb()
    emit(
        {
            "bench": "reconcile",
            "messages": args.messages,
            "reads_per_second": rate,
            "latency_ms": args.latency_ms,
            "workers": WORKERS,
            "seconds": round(seconds, 2),
            "raw_seconds": round(raw_seconds, 2),
            "ratio": round(raw_seconds / seconds, 3) if seconds else None,
            "checked": counts.get("checked"),
            "updated": counts.get("updated"),
            "unchanged": counts.get("unchanged"),
            "errors": counts.get("errors"),
            "wrong": wrong,
            "peak_rss_mb": round(peak, 1),
            "rate_limited": counts.get("rate_limited"),
            "fake_429_ours": limited_ours,
            "fake_429_raw": limited_raw,
        }
    )


if __name__ == "__main__":
    main()
