"""Helpers shared by tests: database URLs, creating throwaway databases, running the CLI."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from app.config import load_config

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/broadcaster_test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
OUTPUT_DIR = ROOT / "test-results"


def scratch_database(suffix: str) -> str:
    """A throwaway database's name derived from the test database's, so two suites run with
    different TEST_DATABASE_URLs never share (and drop) each other's scratch databases."""
    return f"{make_url(TEST_DATABASE_URL).database}_{suffix}"


@contextlib.contextmanager
def migrated_scratch_database(suffix: str) -> Iterator[str]:
    """A committed, migrated throwaway database for tests that run real worker processes."""
    name = scratch_database(suffix)
    url = recreate_database(name)
    try:
        done = run_flask(["db", "upgrade"], test_env(DATABASE_URL=url))
        assert done.returncode == 0, done.stderr
        yield url
    finally:
        drop_database(name)


def twilio_worker_settings(fake: Any, **extra: str) -> dict[str, str]:
    """Environment for worker processes sending through the twilio transport to a fake server."""
    return {
        "TRANSPORT": "twilio",
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": "+13135559999",
        "TWILIO_API_BASE_URL": fake.url,
        "QUIET_HOURS": "off",
        "SEND_RATE_MPS": "1000",
        **extra,
    }


def database_url_named(name: str) -> str:
    """The test server's URL with another database name (for throwaway databases)."""
    return make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def _admin_conninfo() -> str:
    url = make_url(TEST_DATABASE_URL).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def recreate_database(name: str) -> str:
    """Drop and create an empty PostgreSQL database; returns its URL."""
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url_named(name)


def drop_database(name: str) -> None:
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (flask CLI, worker, web server) of the tests."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        {
            "SECRET_KEY": "test-secret-key",
            "REDIS_URL": TEST_REDIS_URL,
            "TRANSPORT": "simulator",
            "PYTHONPATH": str(ROOT),
            "FLASK_APP": "app",
        }
    )
    env.update(extra)
    return env


test_env.__test__ = False  # a helper, not a test, though its name starts with test_


def run_flask(
    args: list[str], env: dict[str, str], timeout: int = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_worker_py(args: list[str], env: dict[str, str], timeout: int = 120):
    """Run `python worker.py ARGS` as the Procfile would; returns the completed process."""
    return subprocess.run(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_test_config(database_url: str = TEST_DATABASE_URL, **overrides: Any) -> dict[str, Any]:
    config = load_config(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "SECRET_KEY": "test-secret-key",
            "TESTING": "true",
            "TRANSPORT": "simulator",
        }
    )
    config.update(overrides)
    return config
