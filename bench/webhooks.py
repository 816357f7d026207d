"""Signed Twilio inbound and status webhooks against gunicorn on PostgreSQL, open loop.

    python -m bench.webhooks --seconds 30 --rps 200

Half the requests are inbound SMS (replies, keywords, new numbers; 5% delivered a second time),
half status callbacks for sent messages (duplicates and out-of-order included). Latency is from
each request's scheduled time to its answer, so a server falling behind cannot hide it. Prints one
JSON line: achieved_rps, p50/p99 latency, errors, stored_once, and the p99 of `/healthz` under the
same load as a baseline.
"""

from __future__ import annotations

import argparse
import http.client
import queue
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from app.extensions import db
from bench.common import (
    base_env,
    bench_database,
    emit,
    free_port,
    log,
    make_app,
    redis_url,
    seed_send,
)

TOKEN = "bench-twilio-auth-token"
PUBLIC = "https://broadcaster.example.org"
SEEDED = 5000
REPLIES = ["Thanks!", "stop by later", "Who is this?", "STOP", "Yes", "HELP", "Great story 👍"]
STATUSES = ["sending", "sent", "delivered", "sent", "undelivered", "delivered"]


def seeded_phone(n: int) -> str:
    return f"+13132{n:06d}"


@dataclass(frozen=True)
class Call:
    path: str
    body: str
    signature: str
    inbound_sid: str | None = None


def plan(rps: int, seconds: float, rng: random.Random) -> list[Call]:
    """Every request of the run, signed in advance (signing is the provider's cost, not ours)."""
    validator = RequestValidator(TOKEN)
    calls: list[Call] = []
    sent_inbound: list[Call] = []
    for n in range(int(rps * seconds)):
        if n % 2 == 0:
            if sent_inbound and rng.random() < 0.05:
                calls.append(rng.choice(sent_inbound))  # Twilio delivering it again
                continue
            seeded = rng.random() < 0.8
            phone = seeded_phone(rng.randint(1, SEEDED)) if seeded else f"+1313555{n % 10000:04d}"
            sid = f"SMbench{n:026d}"
            params = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": "AC" + "0" * 32,
                "From": phone,
                "To": "+13135559999",
                "Body": rng.choice(REPLIES),
            }
            path = "/webhooks/twilio/inbound"
            call = Call(
                path, urlencode(params), validator.compute_signature(PUBLIC + path, params), sid
            )
            sent_inbound.append(call)
        else:
            message_id = rng.randint(1, SEEDED)
            path = f"/webhooks/twilio/status?m={message_id}"
            params = {
                "MessageSid": f"SMseed{message_id:026d}",
                "MessageStatus": rng.choice(STATUSES),
                "AccountSid": "AC" + "0" * 32,
            }
            call = Call(path, urlencode(params), validator.compute_signature(PUBLIC + path, params))
        calls.append(call)
    return calls


def seed(env: dict[str, str]) -> None:
    """SEEDED contacts, each with a sent first message (SID known) and a scheduled follow-up."""
    app = make_app(env)
    seed_send(app, SEEDED, second="Follow-up")
    with app.app_context():
        # Valid Detroit numbers (bench.common's +1555... ones are not), as Twilio would send them.
        db.session.execute(
            sa.text("UPDATE contacts SET phone = '+13132' || lpad(id::text, 6, '0')")
        )
        db.session.execute(
            sa.text(
                "UPDATE outbound_messages SET status = 'sent', provider_status = 'queued', "
                "provider_sid = 'SMseed' || lpad(id::text, 26, '0'), sent_at = now() - interval '5 minutes'"
            )
        )
        db.session.execute(
            sa.text(
                "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                "scheduled_for, attempts, sms_segments, created_at, updated_at) "
                "SELECT broadcast_id, contact_id, 'second', 'Follow-up', 'scheduled', "
                "now() + interval '1 hour', 0, 1, now(), now() FROM outbound_messages"
            )
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "app:create_app()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gunicorn did not start: {process.stderr.read()[-2000:]}")


def drive(
    url: str, calls: list[Call | None], rps: int, concurrency: int
) -> tuple[list[float], int, float]:
    """Send `calls` at `rps` (None = GET /healthz) from `concurrency` keep-alive threads."""
    jobs: queue.Queue = queue.Queue()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    host, port = url.removeprefix("http://").split(":")

    def work() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while True:
            job = jobs.get()
            if job is None:
                connection.close()
                return
            due, call = job
            try:
                if call is None:
                    connection.request("GET", "/healthz")
                else:
                    connection.request(
                        "POST",
                        call.path,
                        body=call.body,
                        headers={
                            "Content-Type": "application/x-www-form-urlencoded",
                            "X-Twilio-Signature": call.signature,
                        },
                    )
                response = connection.getresponse()
                response.read()
                ok = response.status in (200, 204)
            except (OSError, http.client.HTTPException):
                connection.close()  # reconnects on the next request
                ok = False
            with lock:
                latencies.append(time.perf_counter() - due)
                errors[0] += not ok

    threads = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    for n, call in enumerate(calls):
        due = start + n / rps
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((due, call))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--concurrency", type=int, default=48, help="client connections")
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with bench_database("bench_webhooks") as url:
        env = base_env(
            url,
            redis_url(5),
            TRANSPORT="simulator",
            TWILIO_AUTH_TOKEN=TOKEN,
            PUBLIC_BASE_URL=PUBLIC,
            RATELIMIT_KEY_PREFIX="bench-webhooks",
        )
        log("seeding...")
        seed(env)
        calls = plan(args.rps, args.seconds, rng)
        port = free_port()
        server = start_gunicorn(env, port, args.workers, args.threads)
        base = f"http://127.0.0.1:{port}"
        try:
            log("baseline: /healthz ...")
            healthz, healthz_errors, _ = drive(
                base, [None] * int(args.rps * args.baseline_seconds), args.rps, args.concurrency
            )
            log(f"webhooks: {len(calls)} requests at {args.rps}/s ...")
            latencies, errors, elapsed = drive(base, calls, args.rps, args.concurrency)
        finally:
            server.terminate()
            server.wait(timeout=20)
        app = make_app(env)
        with app.app_context():
            expected = {c.inbound_sid for c in calls if c.inbound_sid}
            stored = db.session.execute(
                sa.text("SELECT count(*), count(DISTINCT provider_id) FROM inbound_messages")
            ).one()
            events = db.session.scalar(sa.text("SELECT count(*) FROM webhook_events"))
            cancelled = db.session.scalar(
                sa.text("SELECT count(*) FROM outbound_messages WHERE status = 'cancelled'")
            )
            db.session.remove()
            db.engine.dispose()
    p99 = percentile(latencies, 0.99)
    base_p99 = percentile(healthz, 0.99)
    emit(
        {
            "benchmark": "webhooks",
            "target_rps": args.rps,
            "seconds": args.seconds,
            "requests": len(calls),
            "achieved_rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 0.5), 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else 0.0,
            "errors": errors,
            "stored_once": stored[0] == stored[1] == len(expected),
            "inbound_stored": stored[0],
            "webhook_events": events,
            "messages_cancelled": cancelled,
            "healthz_p99_ms": round(base_p99, 1),
            "healthz_errors": healthz_errors,
            "p99_vs_healthz": round(p99 / base_p99, 2) if base_p99 else None,
            "gunicorn": f"{args.workers} workers x {args.threads} threads",
        }
    )
    return 0 if errors == 0 and stored[0] == len(expected) else 1


if __name__ == "__main__":
    sys.exit(main())
