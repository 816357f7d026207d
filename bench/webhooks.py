"""Signed Twilio inbound and status webhooks against gunicorn and a real worker on PostgreSQL.

    python -m bench.webhooks --seconds 30 --rps 200

Half the requests are inbound SMS (replies, keywords, new numbers; 5% delivered a second time),
half status callbacks for sent messages (duplicates and out-of-order included). Open loop at
`--rps`: latency is from each request's scheduled time to its answer, so a server falling behind
cannot hide it. Then, in the same run, closed loop (every connection sends its next request as
soon as the last is answered) for the capacity of the same mix and of `/healthz`, in alternating
slices so that a change in the machine's load weighs on both alike. Before the
server starts, the same requests in-process count SQL statements and server time per request.

Prints one JSON line: p50/p99 latency and errors at `--rps`, `stored_once` (every inbound SMS
answered 2xx stored exactly once, every status callback answered 204 applied by the worker and
logged exactly once, nothing left in the inbox), `capacity_rps`, `healthz_capacity_rps` and
their `capacity_ratio`; statements per request; how long the worker took to empty the inbox.
"""

from __future__ import annotations

import argparse
import http.client
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from app.extensions import db, make_redis
from bench.common import (
    ROOT,
    base_env,
    bench_database,
    emit,
    free_port,
    kill_tree,
    log,
    make_app,
    redis_url,
    seed_send,
    start_worker,
)

TOKEN = "bench-twilio-auth-token"
PUBLIC = "https://broadcaster.example.org"
SEEDED = 5000
CAPACITY_SLICES = 4
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


def plan(count: int, rng: random.Random, start: int = 0) -> list[Call]:
    """`count` requests, signed in advance (signing is the provider's cost, not ours); `start`
    keeps the SIDs of another phase apart."""
    validator = RequestValidator(TOKEN)
    calls: list[Call] = []
    sent_inbound: list[Call] = []
    for n in range(start, start + count):
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


def start_gunicorn(
    env: dict[str, str], port: int, workers: int, threads: int, log_file, preload: bool
) -> subprocess.Popen:
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
            *(["--preload"] if preload else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=log_file,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    process.kill()
    log_file.seek(0)
    raise RuntimeError(f"gunicorn did not start: {log_file.read()[-2000:]}")


def _send(connection: http.client.HTTPConnection, call: Call | None) -> int:
    """One request on a keep-alive connection; its status, or 0 for a connection error."""
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
        return response.status
    except (OSError, http.client.HTTPException):
        connection.close()  # reconnects on the next request
        return 0


def drive(
    url: str, calls: list[Call | None], rps: int, concurrency: int
) -> tuple[list[float], list[int], float]:
    """Send `calls` at `rps` (None = GET /healthz) from `concurrency` keep-alive threads, open
    loop. Returns each request's latency from its due time, each call's status, the time taken."""
    jobs: queue.Queue = queue.Queue()
    latencies: list[float] = []
    statuses = [0] * len(calls)
    lock = threading.Lock()
    host, port = url.removeprefix("http://").split(":")

    def work() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while True:
            job = jobs.get()
            if job is None:
                connection.close()
                return
            n, due = job
            statuses[n] = _send(connection, calls[n])
            with lock:
                latencies.append(time.perf_counter() - due)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    for n in range(len(calls)):
        due = start + n / rps
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((n, due))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - start


def hammer(
    url: str, calls: list[Call | None], seconds: float, concurrency: int
) -> tuple[int, list[int], float]:
    """Closed loop: each of `concurrency` connections sends the next of `calls` as soon as its
    last one is answered, for `seconds`. Returns requests answered 2xx, each call's status (0:
    not sent or failed) and the time taken."""
    statuses = [0] * len(calls)
    cursor = iter(range(len(calls)))
    lock = threading.Lock()
    host, port = url.removeprefix("http://").split(":")
    deadline = time.perf_counter() + seconds

    def work() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.perf_counter() < deadline:
            with lock:
                n = next(cursor, None)
            if n is None:
                break
            statuses[n] = _send(connection, calls[n])
        connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return sum(200 <= code < 300 for code in statuses), statuses, elapsed


def profile_in_process(
    env: dict[str, str], calls: list[Call]
) -> tuple[dict[str, float], list[int]]:
    """The same requests through the app in this process (no HTTP, no gunicorn): SQL statements
    and server time per inbound SMS and per status callback; and each call's status."""
    app = make_app(env)
    client = app.test_client()
    statements = [0]
    with app.app_context():
        sa.event.listen(
            db.engine,
            "before_cursor_execute",
            lambda *_: statements.__setitem__(0, statements[0] + 1),
        )
    counts: dict[str, list[int]] = {"inbound": [], "status": []}
    seconds = {"inbound": 0.0, "status": 0.0}
    codes = []
    for call in calls:
        kind = "inbound" if call.inbound_sid else "status"
        statements[0] = 0
        started = time.perf_counter()
        response = client.post(
            call.path,
            data=call.body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": call.signature},
        )
        seconds[kind] += time.perf_counter() - started
        if response.status_code not in (200, 204):
            raise RuntimeError(f"in-process {call.path}: {response.status_code}")
        codes.append(response.status_code)
        counts[kind].append(statements[0])
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    result: dict[str, float] = {}
    for kind, values in counts.items():
        result[f"statements_{kind}_avg"] = round(sum(values) / len(values), 2)
        result[f"statements_{kind}_max"] = max(values)
        result[f"inprocess_ms_{kind}"] = round(1000 * seconds[kind] / len(values), 2)
    return result, codes


def wait_for_inbox(env: dict[str, str], timeout: float) -> float | None:
    """Seconds until the worker has applied every status callback, or None if it did not."""
    app = make_app(env)
    started = time.monotonic()
    with app.app_context():
        try:
            while time.monotonic() - started < timeout:
                if not db.session.scalar(sa.text("SELECT count(*) FROM status_callbacks")):
                    return round(time.monotonic() - started, 2)
                db.session.rollback()
                time.sleep(0.1)
            return None
        finally:
            db.session.remove()
            db.engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per gunicorn worker (WEB_THREADS)"
    )
    parser.add_argument("--preload", action="store_true", help="gunicorn --preload")
    parser.add_argument("--concurrency", type=int, default=48, help="client connections")
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument(
        "--capacity-seconds", type=float, default=10, help="closed loop, each of mix and /healthz"
    )
    parser.add_argument(
        "--capacity-concurrency", type=int, default=16, help="closed-loop client connections"
    )
    parser.add_argument("--profile-requests", type=int, default=400)
    parser.add_argument("--database", default="bench_webhooks", help="scratch database name")
    parser.add_argument("--redis-db", type=int, default=5, help="database on REDIS_URL's server")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with bench_database(args.database) as url:
        env = base_env(
            url,
            redis_url(args.redis_db),
            TRANSPORT="simulator",
            TWILIO_AUTH_TOKEN=TOKEN,
            PUBLIC_BASE_URL=PUBLIC,
            RATELIMIT_KEY_PREFIX=f"bench-webhooks-{args.redis_db}",
            REDIS_KEY_PREFIX=f"bench-webhooks-{args.redis_db}",
        )
        make_redis(env["REDIS_URL"]).flushdb()  # our own database number: no jobs left over
        log("seeding...")
        seed(env)
        profiled = plan(args.profile_requests, rng, start=10_000_000)
        calls = plan(int(args.rps * args.seconds), rng)
        capacity_calls = plan(int(1500 * args.capacity_seconds), rng, start=20_000_000)
        log(f"in-process: {len(profiled)} requests ...")
        statements, profiled_statuses = profile_in_process(env, profiled)
        port = free_port()
        log_file = tempfile.TemporaryFile("w+")
        server = start_gunicorn(env, port, args.workers, args.threads, log_file, args.preload)
        worker = start_worker(env, burst=False)
        base = f"http://127.0.0.1:{port}"
        try:
            log("baseline: /healthz open loop ...")
            healthz, healthz_statuses, _ = drive(
                base, [None] * int(args.rps * args.baseline_seconds), args.rps, args.concurrency
            )
            log(f"webhooks: {len(calls)} requests at {args.rps}/s ...")
            latencies, statuses, elapsed = drive(base, calls, args.rps, args.concurrency)
            # Closed loop, in alternating slices of /healthz and of the mix, so a machine whose
            # load drifts during the run weighs on both alike.
            log("capacity: /healthz and webhooks closed loop, alternating ...")
            healthz_calls: list[Call | None] = [None] * int(3000 * args.capacity_seconds)
            healthz_done = mix_done = 0
            healthz_elapsed = mix_elapsed = 0.0
            capacity_statuses = [0] * len(capacity_calls)
            slice_seconds = args.capacity_seconds / CAPACITY_SLICES
            for n in range(CAPACITY_SLICES):
                done, _, took = hammer(
                    base, healthz_calls, slice_seconds, args.capacity_concurrency
                )
                healthz_done, healthz_elapsed = healthz_done + done, healthz_elapsed + took
                offset = n * len(capacity_calls) // CAPACITY_SLICES
                part = capacity_calls[offset : (n + 1) * len(capacity_calls) // CAPACITY_SLICES]
                done, codes, took = hammer(base, part, slice_seconds, args.capacity_concurrency)
                capacity_statuses[offset : offset + len(codes)] = codes
                mix_done, mix_elapsed = mix_done + done, mix_elapsed + took
            log("waiting for the worker to apply the inbox ...")
            drained_s = wait_for_inbox(env, 60)
        finally:
            kill_tree(worker, signal.SIGTERM)
            server.terminate()
            server.wait(timeout=20)
            log_file.close()
        answered = [
            (call, code)
            for call, code in (
                *zip(profiled, profiled_statuses, strict=True),
                *zip(calls, statuses, strict=True),
                *zip(capacity_calls, capacity_statuses, strict=True),
            )
            if code
        ]
        expected_inbound = {c.inbound_sid for c, code in answered if c.inbound_sid and code == 200}
        status_accepted = sum(1 for c, code in answered if not c.inbound_sid and code == 204)
        inbound_answered = sum(1 for c, code in answered if c.inbound_sid and code == 200)
        app = make_app(env)
        with app.app_context():
            stored = db.session.execute(
                sa.text("SELECT count(*), count(DISTINCT provider_id) FROM inbound_messages")
            ).one()
            events = dict(
                db.session.execute(
                    sa.text("SELECT source, count(*) FROM webhook_events GROUP BY source")
                ).all()
            )
            pending = db.session.scalar(sa.text("SELECT count(*) FROM status_callbacks"))
            cancelled = db.session.scalar(
                sa.text("SELECT count(*) FROM outbound_messages WHERE status = 'cancelled'")
            )
            db.session.remove()
            db.engine.dispose()
    errors = sum(not (200 <= code < 300) for code in statuses)
    stored_once = (
        stored[0] == stored[1] == len(expected_inbound)
        and events.get("twilio_inbound", 0) == inbound_answered
        and events.get("twilio_status", 0) == status_accepted
        and pending == 0
    )
    p99 = percentile(latencies, 0.99)
    base_p99 = percentile(healthz, 0.99)
    capacity = mix_done / mix_elapsed
    healthz_capacity = healthz_done / healthz_elapsed
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
            "stored_once": stored_once,
            "inbound_stored": stored[0],
            "status_callbacks_logged": events.get("twilio_status", 0),
            "status_callbacks_accepted": status_accepted,
            "inbox_left": pending,
            "inbox_drained_s": drained_s,
            "messages_cancelled": cancelled,
            "capacity_rps": round(capacity, 1),
            "healthz_capacity_rps": round(healthz_capacity, 1),
            "capacity_ratio": round(capacity / healthz_capacity, 2) if healthz_capacity else None,
            "capacity_errors": sum(1 for code in capacity_statuses if code and code >= 300),
            "healthz_p99_ms": round(base_p99, 1),
            "healthz_errors": sum(not (200 <= code < 300) for code in healthz_statuses),
            **statements,
            "gunicorn": f"{args.workers} workers x {args.threads} threads gthread"
            + (" preload" if args.preload else ""),
        }
    )
    return 0 if errors == 0 and stored_once else 1


if __name__ == "__main__":
    sys.exit(main())
