"""What the sending benchmarks share: a throwaway database, worker processes, RSS, the fake."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from app import create_app
from app.config import load_config
from app.extensions import db

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def emit(result: dict[str, Any]) -> None:
    """The one JSON line a benchmark prints."""
    print(json.dumps(result, sort_keys=False), flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def redis_url(db_number: int) -> str:
    """REDIS_URL's server with the benchmark's own database number."""
    base = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    head, _, tail = base.rpartition("/")
    return f"{head}/{db_number}" if tail.isdigit() else f"{base.rstrip('/')}/{db_number}"


def _admin(url: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


@contextmanager
def bench_database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database on DATABASE_URL's server, migrated; dropped afterwards."""
    url = make_url(server_url()).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = base_env(url, redis_url(0))
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"migrations failed: {done.stderr[-2000:]}")
        yield url
    finally:
        with psycopg.connect(_admin(url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_env(database_url: str, redis: str, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis,
            "SECRET_KEY": "bench-secret-key",
            "PYTHONPATH": str(ROOT),
            "FLASK_APP": "app",
            "QUIET_HOURS": "off",
        }
    )
    env.update({key: str(value) for key, value in settings.items()})
    return env


def twilio_env(database_url: str, redis: str, fake_url: str, **settings: Any) -> dict[str, str]:
    """Workers' environment for the twilio transport pointed at a fake Twilio server."""
    from tests.fakes.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

    return base_env(
        database_url,
        redis,
        TRANSPORT="twilio",
        TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+13135559999",
        TWILIO_API_BASE_URL=fake_url,
        PUBLIC_BASE_URL="https://broadcaster.example.org",
        **settings,
    )


def make_app(env: dict[str, str]) -> Flask:
    return create_app(load_config(env))


def seed_send(app: Flask, count: int, *, body: str = "Bench message", second: str | None = None):
    """`count` contacts and one broadcast with a queued first message to each; returns its id."""
    from app.models import Broadcast, BroadcastStatus
    from app.sending.outbound import create_outbound

    with app.app_context():
        engine = db.engine
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO contacts (phone, name, zip_code, attributes, unsubscribed, "
                    "excluded, source, created_at, updated_at) "
                    "SELECT '+1555' || lpad(g::text, 7, '0'), 'Bench ' || g, '48201', '{}', "
                    "false, false, 'conversation', now(), now() "
                    "FROM generate_series(1, :n) AS g"
                ),
                {"n": count},
            )
        broadcast = Broadcast(
            first_message=body,
            second_message=second,
            status=BroadcastStatus.SENDING,
            delay_seconds=3600,
        )
        db.session.add(broadcast)
        db.session.flush()
        ids = db.session.scalars(sa.text("SELECT id FROM contacts ORDER BY id")).all()
        create_outbound(broadcast, ids, body)
        db.session.commit()
        return broadcast.id


def status_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(
            sa.text("SELECT status, count(*) FROM outbound_messages GROUP BY status")
        ).all()
        db.session.remove()
    return {status: n for status, n in rows}


def start_worker(env: dict[str, str], *, burst: bool) -> subprocess.Popen:
    args = [sys.executable, "worker.py", "worker", "--queues", "sending", "default"]
    if burst:
        args.append("--burst")
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (RQ forks a work horse per job)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(children.get(current, []))
    return tree


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssWatcher:
    """Peak resident memory of any one process in the workers' trees, sampled as they run."""

    def __init__(self) -> None:
        self.peak = 0.0

    def sample(self, pids: list[int]) -> None:
        for pid in pids:
            for member in process_tree(pid):
                self.peak = max(self.peak, rss_mb(member, "VmHWM"), rss_mb(member))


def kill_tree(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the worker and every descendant: RQ's work horse runs in a session of its own,
    so signalling the worker's process group alone would leave the horse sending."""
    for pid in reversed(process_tree(process.pid)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a free port, for a benchmark that restarts Redis."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/services.sh installs it)")
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
