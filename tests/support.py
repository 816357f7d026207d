"""Helpers shared by tests: database URLs, creating throwaway databases, running the CLI, the
htmx request header and finding one element of a page."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
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

# What htmx sends with each request it makes: `client.get(url, headers=HX)` asks for the partial.
HX = {"HX-Request": "true"}

# Elements that never have an end tag.
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())


class Element(str):
    """One element's outer HTML exactly as the page has it (so `"&lt;b&gt;" in element` checks
    escaping as on the whole page), plus `.text`: what a person reads in it, entities decoded
    and white space collapsed."""

    @property
    def text(self) -> str:
        parser = _Text()
        parser.feed(self)
        parser.close()
        return " ".join("".join(parser.parts).split())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self.hidden.append(tag)
        elif tag in _VOID or tag in ("p", "li", "tr", "td", "th", "div"):
            self.parts.append(" ")  # a new block or cell is never glued to the previous word

    def handle_endtag(self, tag):
        if self.hidden and self.hidden[-1] == tag:
            self.hidden.pop()

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


class _FindById(HTMLParser):
    """Where the element with one id starts and ends (offsets into the page). Only nested
    elements of the same name are counted, so an unclosed `<p>` or `<li>` inside does not
    matter."""

    def __init__(self, html: str, dom_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html, self.dom_id = html, dom_id
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(html) if ch == "\n"]
        self.tag: str | None = None
        self.start = self.end = -1
        self.depth = 0
        self.found = 0

    def _here(self) -> int:
        line, column = self.getpos()  # lines counted by "\n", as line_starts are
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("id") == self.dom_id:
            self.found += 1
            if self.tag is None:
                self.tag, self.start, self.depth = tag, self._here(), 1
                if tag in _VOID:
                    self.end = self.start + len(self.get_starttag_text())
            return
        if tag == self.tag and self.end < 0:
            self.depth += 1

    def handle_startendtag(self, tag, attrs):
        if dict(attrs).get("id") == self.dom_id:
            self.found += 1
            if self.tag is None:
                self.tag, self.start = tag, self._here()
                self.end = self.start + len(self.get_starttag_text())

    def handle_endtag(self, tag):
        if tag == self.tag and self.end < 0:
            self.depth -= 1
            if self.depth == 0:
                self.end = self.html.index(">", self._here()) + 1  # `</div>` as written


def by_id(html: str, dom_id: str) -> Element:
    """The element of `html` whose id is `dom_id`: its outer HTML as an `Element` (a `str`, with
    `.text` for the words a person reads in it).

    DOM ids are the contract between routes and pages, so asserting inside one element says what
    a test means (`"Sending now" in by_id(html, f"broadcasts-progress-{b.id}")`) and cannot pass
    by finding the words elsewhere on the page. Fails the test, naming the id, when no element or
    more than one has it.
    """
    parser = _FindById(html, dom_id)
    parser.feed(html)
    parser.close()
    if parser.tag is None:
        raise AssertionError(f"no element with id={dom_id!r} in:\n{html[:3000]}")
    if parser.found > 1:
        raise AssertionError(f"{parser.found} elements with id={dom_id!r}: ids must be unique")
    if parser.end < 0:
        raise AssertionError(f"<{parser.tag} id={dom_id!r}> is never closed")
    return Element(html[parser.start : parser.end])


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
    return fake.app_settings(**{"QUIET_HOURS": "off", "SEND_RATE_MPS": "1000", **extra})


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


def start_worker_py(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start `python worker.py ARGS` in a session of its own, output discarded, so a test can
    kill it and its RQ work horse together (bench.common.kill_tree)."""
    return subprocess.Popen(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
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
