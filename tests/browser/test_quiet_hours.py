"""Quiet hours seen at night: with the app's clock at 3:46 AM in Detroit, "Send now" warns before
the fact, the schedule refuses a slot inside quiet hours, and once a real worker has claimed the
texts the broadcast's page and the overview say they are held until 9:00 AM recipients' time,
never "sending"; in Chromium at 1280 px and in a 320-px sidebar-sized window."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import E2E_DATABASE, LiveServer, PageProblems, serve
from tests.browser.test_broadcasts import no_problems, save_field
from tests.browser.test_navigation import (
    SIDEBAR,
    assert_page_ok,
    horizontal_overflow,
    screenshot,
    sign_in,
)
from tests.support import run_worker_py

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ZONE = ZoneInfo("America/Detroit")


@pytest.fixture(scope="module")
def night_server() -> Iterator[LiveServer]:
    """A server whose clock says 3:46 AM in Detroit today, with quiet hours 9:00 AM–8:00 PM."""
    night = datetime.now(ZONE).replace(hour=3, minute=46, second=0, microsecond=0)
    with serve(
        f"{E2E_DATABASE}_night",
        "redis://127.0.0.1:6379/8",
        "browser-night-server.log",
        QUIET_HOURS="09:00-20:00",
        APP_CLOCK_START=night.isoformat(),
    ) as server:
        yield server


@pytest.fixture
def night_page(browser, night_server: LiveServer, problems: PageProblems) -> Iterator[Page]:
    context = browser.new_context(
        base_url=night_server.url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(5_000)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    page.on(
        "response",
        lambda r: (
            problems.failed_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None
        ),
    )
    try:
        yield page
    finally:
        context.close()


def test_at_night_sends_say_when_they_will_go_out_and_are_shown_held(
    night_page: Page, night_server: LiveServer, problems: PageProblems
):
    page = night_page
    page.goto("/auth/login")
    sign_in(page, night_server)
    page.goto("/broadcasts/")
    assert_page_ok(page, "Broadcasts")
    expect(page.locator("#broadcasts-schedule-quiet")).to_contain_text(
        "texts go out only 9:00 AM–8:00 PM, recipients' time"
    )

    # A weekly slot in quiet hours is refused, saying why; nothing is saved.
    page.select_option("#broadcasts-schedule-monday", "06:00")
    page.click("#broadcasts-schedule-save")
    error = page.locator("#broadcasts-schedule-error")
    expect(error).to_contain_text("Monday 6:00 AM is in quiet hours")
    expect(error).to_contain_text("would wait until 9:00 AM")
    expect(page.locator("#broadcasts-schedule-monday")).to_have_attribute("aria-invalid", "true")

    save_field(page, "#broadcasts-second_message", "")
    expect(page.locator("#broadcasts-second_message-saved")).to_be_visible()
    save_field(page, "#broadcasts-batch_size", "20")
    expect(page.locator("#broadcasts-batch_size-saved")).to_be_visible()

    # Send now warns before the fact.
    page.click("#broadcasts-send-now")
    warning = page.locator("#broadcasts-send-now-quiet")
    expect(warning).to_contain_text(re.compile(r"It is 3:4\d AM in Detroit"))
    expect(warning).to_contain_text("texts will go out from 9:00 AM recipients' time")
    recipients = int(page.locator("#broadcasts-send-now-count").inner_text().replace(",", ""))
    assert 0 < recipients <= 20
    screenshot(page, "quiet-send-now-1280.png")
    with page.expect_navigation():
        page.click("#broadcasts-send-now-go")
    broadcast_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#flash")).to_contain_text("texts will go out from 9:00 AM")

    # A real worker claims the texts; quiet hours put every one of them back until 9:00 AM.
    done = run_worker_py(["worker", "--burst"], night_server.env)
    assert done.returncode == 0, done.stderr[-3000:]
    held = page.locator(f"#broadcasts-held-{broadcast_id}")
    expect(held).to_contain_text(
        f"{recipients} messages held by quiet hours until 9:00 AM recipients' time",
        timeout=15_000,
    )
    expect(held).to_contain_text(f"({recipients} first messages)")
    head = page.locator(f"#broadcasts-progress-head-{broadcast_id}")
    expect(head).to_contain_text("is held by quiet hours")
    expect(head).not_to_contain_text("is sending")
    screenshot(page, "quiet-held-1280.png")
    page.set_viewport_size(SIDEBAR)
    page.reload()
    expect(page.locator(f"#broadcasts-held-{broadcast_id}")).to_be_visible()
    assert horizontal_overflow(page) <= 1
    screenshot(page, "quiet-held-320.png")

    # The overview says the same.
    page.goto("/")
    last = page.locator("#dashboard-last")
    expect(last).to_contain_text("held by quiet hours until 9:00 AM recipients' time")
    expect(last).to_contain_text("is held by quiet hours")
    assert horizontal_overflow(page) <= 1
    screenshot(page, "quiet-overview-320.png")
    no_problems(problems, allowed_status=(422,))
