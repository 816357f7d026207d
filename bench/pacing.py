"""Pacing: two workers share one sender's cap through Redis; the fake enforces that cap.

    python -m bench.pacing --mps 50 --seconds 30 --latency-ms 100

The fake Twilio server answers 429 (20429) to anything faster than `--mps` (a token bucket with
a tenth of a second of burst, as carriers allow), so `provider_429` counts every time the
engine went too fast. The achieved rate is measured by the fake, from the arrival of the first
message to the last.
"""

from __future__ import annotations

import argparse
import time

from redis import Redis

from bench.common import (
    bench_database,
    emit,
    kill_tree,
    log,
    make_app,
    redis_url,
    seed_send,
    start_worker,
    status_counts,
    twilio_env,
)
from tests.fakes.server import start_fake_process

REDIS_DB = 6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mps", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    count = int(args.mps * args.seconds) + 1

    fake = start_fake_process("twilio", latency_ms=args.latency_ms, max_mps=args.mps)
    redis = Redis.from_url(redis_url(REDIS_DB))
    redis.flushdb()
    try:
        with bench_database("bench_pacing") as url:
            env = twilio_env(
                url,
                redis_url(REDIS_DB),
                fake.url,
                SEND_RATE_MPS=args.mps,
                SEND_PARALLEL_JOBS=args.workers * 2,
            )
            app = make_app(env)
            seed_send(app, count, body="Pacing check: one segment.")
            from app.jobs.sending import enqueue_sending

            with app.app_context():
                enqueue_sending(app)
            workers = [start_worker(env, burst=True) for _ in range(args.workers)]
            deadline = time.monotonic() + args.seconds * 3 + 60
            while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
                time.sleep(0.5)
            for worker in workers:
                kill_tree(worker)
            stats = fake.control.stats()
            records = fake.control.messages()
            times = sorted(r["date_created"] for r in records)
            from datetime import datetime

            stamps = [datetime.fromisoformat(t).timestamp() for t in times]
            span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
            achieved = (len(stamps) - 1) / span if span else 0.0
            # The worst one-second window, as a carrier would count it.
            worst, start = 0, 0
            for end, stamp in enumerate(stamps):
                while stamp - stamps[start] >= 1.0:
                    start += 1
                worst = max(worst, end - start + 1)
            counts = status_counts(app)
            log(f"statuses: {counts}")
            emit(
                {
                    "benchmark": "pacing",
                    "mps_cap": args.mps,
                    "workers": args.workers,
                    "latency_ms": args.latency_ms,
                    "messages": len(stamps),
                    "seconds": round(span, 2),
                    "achieved_mps": round(achieved, 2),
                    "ratio": round(achieved / args.mps, 4),
                    "worst_1s_window": worst,
                    "provider_429": stats.get("errors_by_code", {}).get("20429", 0)
                    + stats.get("errors_by_code", {}).get(20429, 0),
                    "statuses": counts,
                }
            )
    finally:
        redis.flushdb()
        fake.stop()


if __name__ == "__main__":
    main()
