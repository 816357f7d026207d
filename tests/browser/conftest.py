"""Browser-test fixtures: a real gunicorn server on a throwaway database, and Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import (
    OUTPUT_DIR,
    ROOT,
    drop_database,
    free_port,
    recreate_database,
    run_flask,
    test_env,
)

CHROMIUM = Path(os.environ.get("BROWSER_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    # A page that navigates inside a cross-site frame (the Missive sidebar) gets a new document
    # host with RenderDocument; headless Chromium 156 then routed the mouse events over the frame
    # to the host page, sometimes for good, so clicks were lost without an error (CI, and 3 runs
    # in 3 here; tests/browser/test_sidebar.py's takes_the_mouse). Without it: 0 in 6.
    "--disable-features=RenderDocument",
]
E2E_DATABASE = os.environ.get("TEST_E2E_DATABASE", "broadcaster_test_e2e")
# Its own Redis database, so the server's rate-limit counters and queues never meet the
# in-process tests, which flush theirs (TEST_REDIS_URL) before every test.
E2E_REDIS_URL = os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/13")
# Not admin@example.test: email-validator refuses the special-use .test domain in `users create`.
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "browser-test-password"
STARTUP_TIMEOUT = 20.0
# The server checks X-Twilio-Signature with this token, so a test can post signed webhooks.
TWILIO_AUTH_TOKEN = "e2e-twilio-token"


# The suite-wide autouse fixtures roll back a transaction on the in-process test database
# and flush Redis around every test. A browser test talks to its own server and database,
# so they are switched off here: no schema rebuild of the shared test database for nothing.
@pytest.fixture(autouse=True)
def _transaction() -> None:
    return None


@pytest.fixture(autouse=True)
def redis_conn() -> None:
    return None


@pytest.fixture(autouse=True)
def _csrf_off_by_default() -> None:
    return None


@dataclass
class LiveServer:
    url: str
    log_path: Path
    email: str = ADMIN_EMAIL
    password: str = ADMIN_PASSWORD
    # The server's environment: a worker started by a test uses the same database and Redis.
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_until_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"The web server exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"/healthz did not answer within {STARTUP_TIMEOUT}s:\n{log_path.read_text()}"
    )


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def serve(database: str, redis_url: str, log_name: str, **extra: str) -> Iterator[LiveServer]:
    """gunicorn serving the app, as the Procfile runs it, on a freshly migrated database with
    the demo data; `extra` adds to (or overrides) the server's environment."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    # The port is chosen first: Twilio signs the public URL, which must be this server's.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {
        # A fresh prefix per run: no sign-in attempts counted by an earlier run.
        "RATELIMIT_KEY_PREFIX": f"broadcaster-e2e-{uuid.uuid4().hex[:8]}",
        # Sends go out whatever the hour the tests run, quickly, with receipts a second later.
        "QUIET_HOURS": "off",
        "SEND_RATE_MPS": "50",
        "SIMULATOR_STATUS_DELAY_SECONDS": "1",
        # Signed Twilio webhooks (tests/browser/test_inbound_timeline.py); sends stay simulated.
        "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
        "PUBLIC_BASE_URL": url,
        "TRANSPORT": "simulator",
    }
    env = test_env(
        DATABASE_URL=recreate_database(database), REDIS_URL=redis_url, **{**settings, **extra}
    )
    process: subprocess.Popen | None = None
    try:
        _check(run_flask(["db", "upgrade"], env), "flask db upgrade")
        _check(
            run_flask(
                ["users", "create", ADMIN_EMAIL, "--role", "admin", "--password", ADMIN_PASSWORD],
                env,
            ),
            "flask users create",
        )
        # Demo contacts, segments, a schedule and an upcoming broadcast: pages show real content.
        _check(run_flask(["seed-demo"], env), "flask seed-demo")
        log_path = OUTPUT_DIR / log_name
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "app:create_app()",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--access-logfile",
                    "-",
                ],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        _wait_until_healthy(url, process, log_path)
        yield LiveServer(url=url, log_path=log_path, env=env)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        drop_database(database)


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    """The suite's server: real time, quiet hours off."""
    with serve(E2E_DATABASE, E2E_REDIS_URL, "browser-server.log") as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageProblems:
    """What went wrong in the browser while a test ran: each entry is one readable line."""

    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)


# Reported through a binding, so violations are seen even on pages that navigate away at once.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}`);
});
"""


@pytest.fixture
def context(browser, live_server: LiveServer) -> Iterator:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(context, problems: PageProblems) -> Iterator:
    page = context.new_page()
    page.expose_function("__reportCspViolation", lambda line: problems.csp_violations.append(line))
    page.add_init_script(_CSP_LISTENER)

    def on_console(message) -> None:
        if message.type == "error":
            problems.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def on_response(response) -> None:
        if response.status >= 400:
            problems.failed_responses.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    page.on("response", on_response)
    yield page
    page.close()
