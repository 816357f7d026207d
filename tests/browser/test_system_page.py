"""An operator runs the status reconciliation now from the System page and watches it queue, run
on a real worker against the fake Twilio with its progress, and show its result; a viewer sees no Run now button and is refused the POST. In
Chromium, on a laptop and in a 320-px sidebar-sized window."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from bench.common import kill_tree
from tests.browser.conftest import E2E_DATABASE, LiveServer, PageProblems
from tests.browser.test_navigation import (
    DESKTOP,
    SIDEBAR,
    assert_page_ok,
    click_and_load,
    horizontal_overflow,
    screenshot,
)
from tests.fakes.twilio import FakeTwilio
from tests.support import OUTPUT_DIR, database_url_named, run_flask, start_worker_py

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "system-page-password"
ROW = "#system-periodic-reconcile-statuses"
OPEN_MESSAGES = 600  # more than one chunk of the by-SID pass (500)
TWILIO_FROM = "+13135559999"


def plant_open_messages(fake: FakeTwilio) -> list[int]:
    """`sent` Twilio messages whose receipts never came, and whose SIDs the fake Twilio holds as
    `delivered`: what the daily reconciliation is for. Returns their ids in order."""
    engine = sa.create_engine(database_url_named(E2E_DATABASE))
    ids = []
    with engine.begin() as conn:
        broadcast_id = conn.execute(
            sa.text(
                "INSERT INTO broadcasts (first_message, delay_seconds, batch_size, status, "
                "created_at, updated_at) VALUES ('Road closures this week', 600, 100, 'sent', "
                "now(), now()) RETURNING id"
            )
        ).scalar_one()
        prefix = f"+1586{uuid.uuid4().int % 1000:03d}"
        for i in range(OPEN_MESSAGES):
            phone = f"{prefix}{i:04d}"
            contact_id = conn.execute(
                sa.text(
                    "INSERT INTO contacts (phone, attributes, unsubscribed, excluded, source, "
                    "created_at, updated_at) VALUES (:phone, '{}', false, false, 'upload', "
                    "now(), now()) RETURNING id"
                ),
                {"phone": phone},
            ).scalar_one()
            sid = fake.add_message(phone, "Road closures this week", "delivered")
            ids.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, "
                        "status, transport, provider_sid, provider_status, attempts, "
                        "sms_segments, sent_at, created_at, updated_at) VALUES (:b, :c, 'first', "
                        "'Road closures this week', 'sent', 'twilio', :sid, 'sent', 1, 1, "
                        "now() - interval '2 days', now() - interval '2 days', now()) "
                        "RETURNING id"
                    ),
                    {"b": broadcast_id, "c": contact_id, "sid": sid},
                ).scalar_one()
            )
    engine.dispose()
    return ids


def add_user(server: LiveServer, email: str, role: str) -> None:
    done = run_flask(["users", "create", email, "--role", role, "--password", PASSWORD], server.env)
    assert done.returncode == 0 or "already exists" in done.stderr + done.stdout, done.stderr


def sign_in_as(page: Page, email: str) -> None:
    page.goto("/auth/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    click_and_load(page, "#auth-login-submit")


def shot(page: Page, name: str) -> None:
    """A full-page screenshot from the top (the sticky header stays where it belongs)."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name)


def shot_of(page: Page, selector: str, name: str) -> None:
    """One region at its real size, to look at closely (cut from the whole page, so the sticky
    header does not lie over it)."""
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator(selector).bounding_box()
    assert box is not None
    page.screenshot(path=str(OUTPUT_DIR / name), full_page=True, clip=box)


def boxes_overlap(page: Page, first: str, second: str) -> bool:
    a = page.locator(first).first.bounding_box()
    b = page.locator(second).first.bounding_box()
    assert a is not None and b is not None
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_operator_runs_a_job_now_and_watches_it_run_on_a_worker(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    fake = FakeTwilio(auth_token="system-page-fake-token", seed=3)
    fake.start()
    try:
        run_reconciliation_now(page, live_server, fake)
    finally:
        fake.stop()
    assert problems.console_errors == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
    assert problems.failed_responses == []


def run_reconciliation_now(page: Page, live_server: LiveServer, fake: FakeTwilio) -> None:
    ids = plant_open_messages(fake)
    add_user(live_server, "operator.system@example.com", "operator")
    sign_in_as(page, "operator.system@example.com")
    page.goto("/system/")
    assert_page_ok(page, "System")
    row = page.locator(ROW)
    expect(row).to_contain_text("Every day at")
    expect(row).to_contain_text("(America/Detroit)")
    expect(page.locator("#system-periodic-tick")).to_contain_text("Every minute")
    shot(page, "system-periodic-1280.png")

    # One message of the second chunk is locked, so once a worker has done the first chunk the
    # job waits there, `running` with its counts so far, until the test lets go: the page's
    # live progress is seen for sure, not by luck.
    lock = psycopg.connect(database_url_named(E2E_DATABASE).replace("+psycopg", ""))
    worker = None
    try:
        lock.execute("SELECT id FROM outbound_messages WHERE id = %s FOR UPDATE", (ids[550],))
        with page.expect_response(lambda r: "/reconcile-statuses/run" in r.url) as answer:
            page.click(f"{ROW}-run")
        assert answer.value.status == 200
        expect(page.locator("#flash")).to_contain_text(
            "reconcile-statuses is queued on the maintenance queue"
        )
        expect(page.locator(f"{ROW}-queued")).to_contain_text("queued")
        expect(row.get_by_role("button", name="Queued…")).to_be_disabled()
        assert row.get_attribute("hx-trigger") == "every 2s"

        # The worker reads from the fake Twilio; the web server never talks to a provider.
        env = {
            **live_server.env,
            "TRANSPORT": "twilio",
            "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token,
            "TWILIO_FROM_NUMBER": TWILIO_FROM,
            "TWILIO_API_BASE_URL": fake.url,
            "TWILIO_READS_PER_SECOND": "1000",
        }
        worker = start_worker_py(["worker", "--queues", "maintenance"], env)
        running = page.locator(f"{ROW}-running")
        expect(running).to_contain_text("running since", timeout=30_000)
        expect(row).to_contain_text("500 of 600 messages checked · 500 updated", timeout=30_000)
        progress = page.locator(f"{ROW}-progress")
        assert (progress.get_attribute("value"), progress.get_attribute("max")) == ("500", "600")
        expect(row.get_by_role("button", name="Running…")).to_be_disabled()
        shot_of(page, "#system-periodic", "system-periodic-running-1280.png")

        lock.rollback()  # let the job finish
        result = page.locator(f"{ROW}-result")
        expect(result.locator(".badge--success")).to_have_text("succeeded", timeout=30_000)
        expect(row).to_contain_text("600 messages checked · 600 updated")
        expect(running).to_have_count(0)
        assert row.get_attribute("hx-trigger") is None  # polling stopped
        expect(row.get_by_role("button", name="Run now")).to_be_enabled()
        # The recent runs list picked the run up by itself.
        expect(page.locator("#system-job-runs")).to_contain_text("status reconciliation")

        # The idle worker's badge sits beside its id, never over it, at both widths.
        page.reload()
        workers = page.locator("#system-workers")
        expect(workers.locator(".badge--idle").first).to_be_visible()
        assert not boxes_overlap(page, "#system-workers .badge", "#system-workers code")
        shot(page, "system-1280.png")
        shot_of(page, "#system-periodic", "system-periodic-done-1280.png")
        page.set_viewport_size(SIDEBAR)
        page.reload()
        assert horizontal_overflow(page) <= 1
        assert not boxes_overlap(page, "#system-workers .badge", "#system-workers code")
        expect(page.locator(f"{ROW}-run")).to_be_visible()
        shot(page, "system-320.png")
        shot_of(page, "#system-workers", "system-workers-320.png")
        shot_of(page, ROW, "system-periodic-row-320.png")
        page.set_viewport_size(DESKTOP)
    finally:
        lock.close()
        if worker is not None:
            kill_tree(worker)

    engine = sa.create_engine(database_url_named(E2E_DATABASE))
    with engine.connect() as conn:
        statuses = conn.execute(
            sa.text(
                "SELECT status, count(*) FROM outbound_messages WHERE id = ANY(:ids) "
                "GROUP BY status"
            ),
            {"ids": ids},
        ).all()
    engine.dispose()
    assert statuses == [("delivered", OPEN_MESSAGES)]
    assert fake.stats()["fetches"] == OPEN_MESSAGES


def test_a_viewer_sees_no_run_now_button_and_is_refused_the_post(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    add_user(live_server, "viewer.system@example.com", "viewer")
    sign_in_as(page, "viewer.system@example.com")
    page.set_viewport_size(SIDEBAR)
    page.goto("/system/")
    assert_page_ok(page, "System")
    periodic = page.locator("#system-periodic")
    expect(periodic.locator(".periodic-job")).not_to_have_count(0)
    expect(periodic.get_by_role("button")).to_have_count(0)
    expect(periodic).not_to_contain_text("Run now")
    assert horizontal_overflow(page) <= 1
    shot(page, "system-viewer-320.png")
    # Posting anyway, with the page's own CSRF token, is refused.
    status = page.evaluate(
        """async () => {
            const headers = JSON.parse(document.body.getAttribute("hx-headers"));
            const answer = await fetch("/system/periodic/retention/run",
                                       {method: "POST", headers: {...headers, "HX-Request": "true"}});
            return answer.status;
        }"""
    )
    assert status == 403
    assert problems.page_errors == []
    assert [line for line in problems.failed_responses if not line.startswith("403 ")] == []
