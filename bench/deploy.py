"""Rolling deploys mid-send: every worker gets SIGTERM every few seconds; nothing doubled or lost.

    python -m bench.deploy --messages 5000

Real `worker.py` workers send a broadcast through the twilio transport to the fake Twilio (in a
process of its own). Every `--interval` seconds a deploy happens as on a Procfile platform: new
workers start, and every old one gets SIGTERM (each process of its tree, as Heroku signals every
process of a dyno), then SIGKILL if it is still there 30 s later. Stale claims are NOT recovered
during the run (no provider lookups), so `left_sending` counts exactly the messages a deploy left
`sending` or `unknown` (each would need a lookup at the provider afterwards). Only the sending
part of the tick runs (release due retries, top up the drain jobs), once a second.

Prints one JSON line: duplicates (the provider got the same message twice), lost (the provider
has it and we do not say so, we say sent and it has not, or it ended nowhere), left_sending,
max_exit_s (the slowest SIGTERM to exit), killed (needed SIGKILL), nonzero_exits.
Targets: 0, 0, 0 and max_exit_s <= 10. Uses its own database `broadcaster_bench_deploy` on
DATABASE_URL's server and Redis database 41 (`--redis-db`) of REDIS_URL's server.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from bench.common import (
    ROOT,
    bench_database,
    emit,
    kill_tree,
    log,
    make_app,
    process_tree,
    redis_url,
    seed_send,
    status_counts,
    twilio_env,
)
from tests.fakes.server import start_fake_process

SETTLED = {"sent", "delivered", "undelivered", "failed", "cancelled", "skipped"}
PLATFORM_KILL_AFTER = 30.0


@dataclass
class Shutdowns:
    """SIGTERM → exit times of the workers a deploy replaced, watched by one thread each."""

    exit_seconds: list[float] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    killed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def terminate(self, process: subprocess.Popen) -> None:
        signalled = time.monotonic()
        for pid in process_tree(process.pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        thread = threading.Thread(target=self._watch, args=(process, signalled), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _watch(self, process: subprocess.Popen, signalled: float) -> None:
        try:
            code = process.wait(timeout=PLATFORM_KILL_AFTER)
            killed = False
        except subprocess.TimeoutExpired:
            kill_tree(process, signal.SIGKILL)
            code, killed = process.wait(), True
        with self.lock:
            self.exit_seconds.append(time.monotonic() - signalled)
            self.codes.append(code)
            self.killed += killed

    def join(self) -> None:
        for thread in self.threads:
            thread.join()


def log_path(log_dir: Path, number: int) -> Path:
    return log_dir / f"worker-{number}.log"


def listening(log_dir: Path, numbers: list[int]) -> bool:
    """Whether every worker of a release has started taking jobs (RQ logs "Listening on")."""
    return all("Listening on" in log_path(log_dir, n).read_text() for n in numbers)


def start_worker(env: dict[str, str], log_dir: Path, number: int) -> subprocess.Popen:
    with log_path(log_dir, number).open("w") as out:
        return subprocess.Popen(
            [sys.executable, "worker.py", "worker", "--queues", "sending", "default"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def sending_tick(app) -> None:
    """The tick's sending share without recovery: due retries released, drain jobs topped up."""
    from app.extensions import db
    from app.jobs.sending import enqueue_sending
    from app.sending.recovery import release_due

    with app.app_context():
        try:
            release_due()
            enqueue_sending(app)
        finally:
            db.session.remove()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between deploys")
    parser.add_argument("--mps", type=float, default=100.0, help="SEND_RATE_MPS")
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--redis-db", type=int, default=41)
    parser.add_argument("--database", default="broadcaster_bench_deploy")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)

    log_dir = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    fake = start_fake_process(
        "twilio", latency_ms=args.latency_ms, latency_jitter_ms=args.latency_ms, seed=args.seed
    )
    redis = redis_url(args.redis_db)
    workers: list[subprocess.Popen] = []
    shutdowns = Shutdowns()
    started_count = 0
    try:
        with bench_database(args.database) as url:
            env = twilio_env(
                url,
                redis,
                fake.url,
                SEND_RATE_MPS=args.mps,
                SEND_CONCURRENCY=8,
                SEND_CLAIM_MAX=200,
                LOG_FORMAT="json",
            )
            app = make_app(env)
            from redis import Redis

            Redis.from_url(redis).flushdb()
            seed_send(app, args.messages, body="Deploy check", second=None)
            started = time.monotonic()

            def release() -> tuple[list[subprocess.Popen], list[int], float]:
                nonlocal started_count
                numbers = list(range(started_count, started_count + args.workers))
                started_count += args.workers
                return [start_worker(env, log_dir, n) for n in numbers], numbers, time.monotonic()

            workers, numbers, release_at = release()
            sending_tick(app)
            deploys = 0
            ready_at: float | None = None
            startup: list[float] = []
            last_counts: dict[str, int] = {}
            quiet_since = time.monotonic()
            while True:
                now = time.monotonic()
                counts = status_counts(app)
                waiting = counts.get("queued", 0) + counts.get("retrying", 0)
                if counts != last_counts:
                    last_counts, quiet_since = counts, now
                if ready_at is None and listening(log_dir, numbers):
                    ready_at = now
                    startup.append(now - release_at)
                # A deploy `interval` seconds after the release's workers started working (this
                # busy machine may take longer than that just to boot them): the new release's
                # workers start while every old one gets SIGTERM.
                if waiting and ready_at is not None and now >= ready_at + args.interval:
                    old = workers
                    workers, numbers, release_at = release()
                    ready_at = None
                    for process in old:
                        shutdowns.terminate(process)
                    deploys += 1
                    log(f"deploy {deploys} at {now - started:.0f} s: {counts}")
                if not waiting and now - quiet_since >= 3.0:
                    break  # nothing left to claim, and nothing moved for 3 s
                if now - started > 900:
                    log("giving up after 15 minutes")
                    break
                sending_tick(app)
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            for process in workers:  # the last release stops too, measured like the others
                shutdowns.terminate(process)
            shutdowns.join()
            workers = []

            counts = status_counts(app)
            stats = fake.control.stats()
            records = fake.control.messages()
            with app.app_context():
                from app.extensions import db

                rows = db.session.execute(
                    sa.text(
                        "SELECT m.status, m.provider_sid, c.phone FROM outbound_messages m "
                        "JOIN contacts c ON c.id = m.contact_id"
                    )
                ).all()
                db.session.remove()
            by_sid = {r["sid"] for r in records}
            accepted_phones = {r["to"] for r in records}
            in_flight = {"sending", "unknown"}
            left_sending = sum(1 for r in rows if r.status in in_flight)
            lost = sum(
                1
                for r in rows
                if (r.status == "sent" and r.provider_sid not in by_sid)
                or (r.status not in SETTLED | in_flight)
                or (r.status != "sent" and r.status not in in_flight and r.phone in accepted_phones)
            )
            emit(
                {
                    "benchmark": "deploy",
                    "messages": args.messages,
                    "workers": args.workers,
                    "deploys": deploys,
                    "sigterms": len(shutdowns.exit_seconds),
                    "seconds": round(elapsed, 1),
                    "duplicates": stats["duplicates"],
                    "lost": lost,
                    "left_sending": left_sending,
                    "max_exit_s": round(max(shutdowns.exit_seconds, default=0.0), 2),
                    "median_exit_s": round(
                        sorted(shutdowns.exit_seconds)[len(shutdowns.exit_seconds) // 2], 2
                    )
                    if shutdowns.exit_seconds
                    else None,
                    "killed": shutdowns.killed,
                    "median_startup_s": round(sorted(startup)[len(startup) // 2], 1)
                    if startup
                    else None,
                    "nonzero_exits": sum(1 for code in shutdowns.codes if code != 0),
                    "provider_accepted": stats["accepted"],
                    "statuses": counts,
                    "send_rate_mps": args.mps,
                    "logs": str(log_dir),
                }
            )
    finally:
        for process in workers:
            kill_tree(process)
        fake.stop()


if __name__ == "__main__":
    main()
