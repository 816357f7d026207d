"""An operator runs a periodic job now from the System page and watches it queue, run on a real
worker and show its result; a viewer sees no Run now button and is refused the POST. In
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
from tests.support import OUTPUT_DIR, database_url_named, run_flask, start_worker_py

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "system-page-password"
ROW = "#system-periodic-undeliverable"


def plant_undeliverable_contact() -> int:
    """A contact whose last 3 messages failed this month and who never replied: the daily
    undeliverable job excludes it."""
    engine = sa.create_engine(database_url_named(E2E_DATABASE))
    with engine.begin() as conn:
        contact_id = conn.execute(
            sa.text(
                "INSERT INTO contacts (phone, attributes, unsubscribed, excluded, source, "
                "created_at, updated_at) VALUES (:phone, '{}', false, false, 'upload', "
                "now(), now()) RETURNING id"
            ),
            {"phone": f"+1586555{uuid.uuid4().int % 10000:04d}"},
        ).scalar_one()
        for days in (3, 10, 17):
            broadcast_id = conn.execute(
                sa.text(
                    "INSERT INTO broadcasts (first_message, delay_seconds, batch_size, status, "
                    "created_at, updated_at) VALUES ('Road closures this week', 600, 100, "
                    "'sent', now(), now()) RETURNING id"
                )
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                    "transport, error_code, attempts, sms_segments, failed_at, created_at, "
                    "updated_at) VALUES (:b, :c, 'first', 'Road closures this week', 'failed', "
                    "'simulator', '30003', 1, 1, now() - make_interval(days => :d), "
                    "now() - make_interval(days => :d), now())"
                ),
                {"b": broadcast_id, "c": contact_id, "d": days},
            )
    engine.dispose()
    return contact_id


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
    """One region at its real size, to look at closely."""
    page.locator(selector).screenshot(path=str(OUTPUT_DIR / name))


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
    contact_id = plant_undeliverable_contact()
    add_user(live_server, "operator.system@example.com", "operator")
    sign_in_as(page, "operator.system@example.com")
    page.goto("/system/")
    assert_page_ok(page, "System")
    row = page.locator(ROW)
    expect(row).to_contain_text("Every day at")
    expect(row).to_contain_text("(America/Detroit)")
    expect(page.locator("#system-periodic-tick")).to_contain_text("Every minute")
    shot(page, "system-periodic-1280.png")

    # The contact's row is locked, so the job, once a worker takes it, stays `running` until
    # the test lets go: the page's running state is seen for sure, not by luck.
    lock = psycopg.connect(database_url_named(E2E_DATABASE).replace("+psycopg", ""))
    worker = None
    try:
        lock.execute("SELECT id FROM contacts WHERE id = %s FOR UPDATE", (contact_id,))
        with page.expect_response(lambda r: "/system/periodic/undeliverable/run" in r.url) as r:
            page.click(f"{ROW}-run")
        assert r.value.status == 200
        expect(page.locator("#flash")).to_contain_text(
            "undeliverable is queued on the maintenance queue"
        )
        expect(page.locator(f"{ROW}-queued")).to_contain_text("queued")
        expect(row.get_by_role("button", name="Queued…")).to_be_disabled()
        assert row.get_attribute("hx-trigger") == "every 2s"

        worker = start_worker_py(["worker", "--queues", "maintenance"], live_server.env)
        expect(page.locator(f"{ROW}-running")).to_be_visible(timeout=30_000)
        expect(page.locator(f"{ROW}-running")).to_contain_text("running since")
        expect(row.get_by_role("button", name="Running…")).to_be_disabled()
        shot_of(page, "#system-periodic", "system-periodic-running-1280.png")

        lock.rollback()  # let the job finish
        result = page.locator(f"{ROW}-result")
        expect(result).to_contain_text("success", timeout=30_000)
        expect(row).to_contain_text("1 number found · 1 contact excluded")
        expect(page.locator(f"{ROW}-running")).to_have_count(0)
        assert row.get_attribute("hx-trigger") is None  # polling stopped
        expect(row.get_by_role("button", name="Run now")).to_be_enabled()
        # The recent runs list picked the run up by itself.
        expect(page.locator("#system-job-runs")).to_contain_text("undeliverable numbers")

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
        excluded = conn.execute(
            sa.text("SELECT excluded, exclude_reason FROM contacts WHERE id = :id"),
            {"id": contact_id},
        ).one()
    engine.dispose()
    assert tuple(excluded) == (True, "undeliverable")
    assert problems.console_errors == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
    assert problems.failed_responses == []


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
