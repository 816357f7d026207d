"""Chaos: workers killed with SIGKILL, a flaky provider, Redis restarted; nothing doubled or lost.

    python -m bench.chaos --messages 5000

While the workers send, a worker is killed with -9 at least 5 times (and restarted, as a
platform would), the fake Twilio server answers 10 % 429, 5 % 500 and holds 2 % of requests
past the client's read timeout (half of those it accepted), and a private Redis is restarted
once (losing every job). The tick runs every second, as rq-scheduler would run it every minute.
Then the provider turns healthy and everything settles.
"""

from __future__ import annotations

import argparse
import random
import signal
import time

import sqlalchemy as sa

from bench.common import (
    PrivateRedis,
    bench_database,
    emit,
    kill_tree,
    log,
    make_app,
    seed_send,
    start_worker,
    status_counts,
    twilio_env,
)
from tests.fakes.server import start_fake_process

SETTLED = {"sent", "delivered", "undelivered", "failed", "cancelled", "skipped"}


def run_tick(app) -> None:
    from app.jobs.tick import tick

    with app.app_context():
        try:
            tick()
        except Exception as exc:  # noqa: BLE001 - Redis is down on purpose for a moment
            log(f"tick failed (expected while Redis restarts): {type(exc).__name__}")
        finally:
            from app.extensions import db

            db.session.remove()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    redis_server = PrivateRedis()
    redis_server.start()
    fake = start_fake_process(
        "twilio",
        latency_ms=20,
        latency_jitter_ms=20,
        rate_429=0.10,
        rate_500=0.05,
        rate_timeout=0.02,
        timeout_seconds=3,
        timeout_accepts=0.5,
        seed=args.seed,
    )
    workers: list = []
    try:
        with bench_database("bench_chaos") as url:
            env = twilio_env(
                url,
                redis_server.url,
                fake.url,
                SEND_RATE_MPS=150,
                SEND_CONCURRENCY=8,
                SEND_CLAIM_MAX=100,
                RETRY_BACKOFF_SECONDS="1,2,3",
                STALE_CLAIM_SECONDS=6,
                PROVIDER_READ_TIMEOUT=1,
            )
            app = make_app(env)
            seed_send(app, args.messages, body="Chaos check", second=None)
            started = time.monotonic()
            workers = [start_worker(env, burst=False) for _ in range(args.workers)]
            kills, redis_restarted, healthy = 0, False, False
            next_kill = time.monotonic() + 1.5
            while True:
                run_tick(app)
                now = time.monotonic()
                if kills < args.kills and now >= next_kill:
                    victim = rng.randrange(len(workers))
                    kill_tree(workers[victim], signal.SIGKILL)
                    workers[victim] = start_worker(env, burst=False)
                    kills += 1
                    next_kill = now + rng.uniform(2.0, 5.0)
                    log(f"killed worker {victim} ({kills})")
                if not redis_restarted and kills >= 3:
                    redis_server.stop()
                    time.sleep(1.0)
                    redis_server.start()
                    redis_restarted = True
                    log("restarted Redis (all jobs lost)")
                for i, worker in enumerate(workers):
                    if worker.poll() is not None:  # died of the Redis restart: restart it
                        workers[i] = start_worker(env, burst=False)
                counts = status_counts(app)
                first_pass_done = not counts.get("queued") and not counts.get("sending")
                if kills >= args.kills and redis_restarted and first_pass_done and not healthy:
                    # Every message has had its first attempt under fire: let the rest settle.
                    fake.control.config(rate_429=0.0, rate_500=0.0, rate_timeout=0.0)
                    healthy = True
                    log(f"provider healthy again after {now - started:.0f} s: {counts}")
                pending = sum(n for s, n in counts.items() if s not in SETTLED | {"unknown"})
                if kills >= args.kills and redis_restarted and pending == 0:
                    with app.app_context():
                        from app.extensions import db

                        unresolved_unknown = db.session.scalar(
                            sa.text(
                                "SELECT count(*) FROM outbound_messages WHERE status='unknown' "
                                "AND (error_message IS NULL "
                                "OR error_message NOT LIKE 'Needs attention:%')"
                            )
                        )
                        db.session.remove()
                    if not unresolved_unknown:
                        break
                if now - started > 900:
                    log("giving up after 15 minutes")
                    break
                time.sleep(1.0)
            elapsed = time.monotonic() - started
            for worker in workers:
                kill_tree(worker)
            counts = status_counts(app)
            stats = fake.control.stats()
            records = fake.control.messages()
            with app.app_context():
                from app.extensions import db

                rows = db.session.execute(
                    sa.text(
                        "SELECT m.status, m.provider_sid, m.error_message, c.phone "
                        "FROM outbound_messages m JOIN contacts c ON c.id = m.contact_id"
                    )
                ).all()
                db.session.remove()
            accepted_phones = {r["to"] for r in records}
            by_sid = {r["sid"] for r in records}
            needs_attention = [
                r
                for r in rows
                if r.status == "unknown" and (r.error_message or "").startswith("Needs attention:")
            ]
            # Lost: the provider has it but we do not say so, or we say sent and it has not,
            # or a message ended nowhere.
            lost = sum(
                1
                for r in rows
                if (r.status == "sent" and r.provider_sid not in by_sid)
                or (r.status in {"failed"} and r.phone in accepted_phones)
                or (r.status not in SETTLED and r not in needs_attention)
            )
            unresolved = sum(
                1 for r in rows if r.status not in SETTLED and r not in needs_attention
            )
            emit(
                {
                    "benchmark": "chaos",
                    "messages": args.messages,
                    "worker_kills": kills,
                    "redis_restarts": 1 if redis_restarted else 0,
                    "seconds": round(elapsed, 1),
                    "duplicates": stats["duplicates"],
                    "lost": lost,
                    "unresolved": unresolved,
                    "needs_attention": len(needs_attention),
                    "provider_accepted": stats["accepted"],
                    "provider_errors": stats.get("errors_by_code", {}),
                    "provider_timeouts": stats.get("timeouts", 0),
                    "statuses": counts,
                }
            )
    finally:
        for worker in workers:
            kill_tree(worker)
        fake.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
