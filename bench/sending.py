"""End-to-end sending throughput versus the raw provider limit measured in the same run.

    python -m bench.sending --messages 20000 --workers 2

Queued rows → real RQ workers (`worker.py`) → the real twilio client → the fake Twilio server (its
own process) → rows updated. The baseline: the same client posting the same number of messages
to the same fake with the same concurrency (processes × threads), no database.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

from redis import Redis

from app.integrations.twilio import TwilioGateway
from bench.common import (
    RssWatcher,
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
from tests.fakes.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

FROM = "+13135559999"
REDIS_DB = 7


def _raw_process(url: str, numbers: list[str], threads: int, body: str) -> None:
    gateway = TwilioGateway(
        account_sid=DEFAULT_ACCOUNT_SID,
        auth_token=DEFAULT_AUTH_TOKEN,
        from_number=FROM,
        base_url=url,
        pool_size=threads,
    )
    callback = "https://broadcaster.example.org/webhooks/twilio/status?m=0"
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda to: gateway.send(to, body, callback), numbers))


def raw_rate(url: str, count: int, processes: int, threads: int, body: str) -> float:
    numbers = [f"+1666{n:07d}" for n in range(count)]
    shares = [numbers[i::processes] for i in range(processes)]
    ctx = multiprocessing.get_context("fork")
    started = time.perf_counter()
    procs = [ctx.Process(target=_raw_process, args=(url, s, threads, body)) for s in shares]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="provider calls per worker")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the fake's answer time")
    args = parser.parse_args(argv)
    body = "Bench: the council meets tonight at 7. Reply STOP to opt out."

    fake = start_fake_process("twilio", latency_ms=args.latency_ms)
    redis = Redis.from_url(redis_url(REDIS_DB))
    redis.flushdb()
    try:
        raw = raw_rate(fake.url, args.messages, args.workers, args.concurrency, body)
        fake.control.reset()
        log(f"raw: {raw:.0f} msgs/s")
        with bench_database("bench_sending") as url:
            env = twilio_env(
                url,
                redis_url(REDIS_DB),
                fake.url,
                SEND_RATE_MPS=100000,
                SEND_CONCURRENCY=args.concurrency,
                SEND_CLAIM_MAX=500,
                SEND_PARALLEL_JOBS=args.workers * 2,
            )
            app = make_app(env)
            seed_send(app, args.messages, body=body)
            from app.jobs.sending import enqueue_sending

            with app.app_context():
                enqueue_sending(app)
            watcher = RssWatcher()
            started = time.perf_counter()
            workers = [start_worker(env, burst=True) for _ in range(args.workers)]
            while any(w.poll() is None for w in workers):
                watcher.sample([w.pid for w in workers])
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            for worker in workers:
                kill_tree(worker)
            counts = status_counts(app)
            stats = fake.control.stats()
            records = fake.control.messages()
            with app.app_context():
                import sqlalchemy as sa

                from app.extensions import db

                sids = set(
                    db.session.scalars(
                        sa.text("SELECT provider_sid FROM outbound_messages WHERE status='sent'")
                    )
                )
                db.session.remove()
            fake_sids = {r["sid"] for r in records}
            sent_rows = counts.get("sent", 0)
            lost = args.messages - len(sids & fake_sids)
            rate = sent_rows / elapsed
            emit(
                {
                    "benchmark": "sending",
                    "messages": args.messages,
                    "workers": args.workers,
                    "concurrency": args.concurrency,
                    "latency_ms": args.latency_ms,
                    "seconds": round(elapsed, 2),
                    "msgs_per_s": round(rate, 1),
                    "raw_msgs_per_s": round(raw, 1),
                    "ratio": round(rate / raw, 3),
                    "duplicates": stats["duplicates"],
                    "lost": lost,
                    "statuses": counts,
                    "worker_peak_rss_mb": round(watcher.peak, 1),
                }
            )
    finally:
        redis.flushdb()
        fake.stop()


if __name__ == "__main__":
    main()
