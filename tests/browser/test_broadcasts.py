"""An operator edits the upcoming broadcast and reschedules it, then sends it now with the
simulator and a real worker, and watches the progress bar reach done, the recipients table
follow it without a reload, and the figures appear;
in Chromium, on a laptop and in a 320-px sidebar-sized window."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from bench.common import kill_tree
from tests.browser.conftest import E2E_DATABASE, LiveServer, PageProblems
from tests.browser.htmx import wait_for_htmx
from tests.browser.test_navigation import (
    DESKTOP,
    SIDEBAR,
    assert_page_ok,
    horizontal_overflow,
    screenshot,
    sign_in,
)
from tests.support import database_url_named, start_worker_py

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ZONE = ZoneInfo("America/Detroit")


def no_problems(problems: PageProblems, allowed_status: tuple[int, ...] = ()) -> None:
    # htmx reports each 422 (a refused field, expected here) twice: the load and its own log.
    assert [
        e
        for e in problems.console_errors
        if "status of 422" not in e and "Response Status Error Code 422" not in e
    ] == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
    unexpected = [
        line for line in problems.failed_responses if int(line.split()[0]) not in allowed_status
    ]
    assert unexpected == []


def save_field(page: Page, selector: str, value: str) -> None:
    """Type into a field and leave it, as a person would: the change event saves it. First wait
    until htmx has finished swapping the last answer in: a person types into the field they see,
    while a fill during the swap can land in the element being replaced (seen once in CI: an
    edit right after a refused one never reached the server)."""
    wait_for_htmx(page)
    page.fill(selector, value)
    page.locator(selector).press("Tab")


def plant_history(count: int) -> None:
    """Finished broadcasts with figures, so the history and the trend have something to show."""
    engine = sa.create_engine(database_url_named(E2E_DATABASE))
    with engine.begin() as conn:
        for i in range(count):
            started = datetime.now(ZONE) - timedelta(days=7 * (count - i) + 1)
            recipients = 180 + 7 * i
            delivered = recipients - 3 - i % 4
            stats = {
                "recipients": recipients,
                "first_sent": recipients,
                "second_sent": recipients // 2,
                "delivered": delivered,
                "failed": recipients - delivered,
                "failed_by_code": [["30006", recipients - delivered]],
                "replies": 5 + (i * 3) % 11,
                "unsubscribes": i % 3,
                "cancelled_by_reply": 4,
                "segments_used": recipients,
                "delivery_rate": round(delivered / recipients, 4),
                "reply_rate": round((5 + (i * 3) % 11) / recipients, 4),
                "first_done": recipients,
                "pending": 0,
                "by_status": {"first": {}, "second": {}},
            }
            conn.execute(
                sa.text(
                    "INSERT INTO broadcasts (first_message, delay_seconds, batch_size, status, "
                    "started_at, finished_at, recipient_count, stats, stats_updated_at, "
                    "created_at, updated_at) VALUES (:body, 600, 200, 'sent', :at, :at, :n, "
                    ":stats, :at, :at, :at)"
                ),
                {
                    "body": f"Weekly update number {i + 1}: what changed in the neighbourhood.",
                    "at": started,
                    "n": recipients,
                    "stats": json.dumps(stats),
                },
            )
    engine.dispose()


def test_operator_edits_the_upcoming_broadcast_and_reschedules_it(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto("/broadcasts/")
    assert_page_ok(page, "Broadcasts")
    expect(page.locator("#broadcasts-upcoming")).to_be_visible()

    # A character outside GSM-7: the counter warns, naming it, while typing.
    first = "#broadcasts-first_message"
    page.fill(first, "Café tonight ☕ at the library: bring your questions.")
    warning = page.locator("#broadcasts-first_message-ucs2")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("☕")
    expect(page.locator("#broadcasts-first_message-count")).to_contain_text("UCS-2")
    # An emoji may bring an invisible character along: the warning names it in words.
    page.fill(first, "Vote 🗳️ today at the library.")
    expect(warning).to_contain_text("variation selector-16 (U+FE0F)")
    expect(warning.locator("code.char").first).to_have_attribute(
        "title", "ballot box with ballot (U+1F5F3)"
    )
    warning.scroll_into_view_if_needed()
    screenshot(page, "broadcasts-ucs2-warning-1280.png")
    page.locator(first).press("Tab")
    expect(page.locator("#broadcasts-first_message-saved")).to_be_visible()
    # Back to plain text: the warning goes.
    save_field(page, first, "Council meets tonight at 7 at the library. Reply with questions!")
    expect(page.locator("#broadcasts-first_message-saved")).to_be_visible()
    expect(page.locator("#broadcasts-first_message-ucs2")).to_have_count(0)
    expect(page.locator("#broadcasts-first_message-count")).to_contain_text("GSM-7")

    # A bad batch size is refused at the field; a good one is saved.
    save_field(page, "#broadcasts-batch_size", "0")
    expect(page.locator("#broadcasts-batch_size-error")).to_contain_text("between 1 and 10,000")
    expect(page.locator("#broadcasts-batch_size")).to_have_attribute("aria-invalid", "true")
    save_field(page, "#broadcasts-batch_size", "25")
    expect(page.locator("#broadcasts-batch_size-saved")).to_be_visible()

    # Ratios: the total follows the typing; over 100 % is refused, then fixed.
    # The demo's two segments (other browser tests may add segments without a share).
    shares = page.locator("#broadcasts-field-segments")
    first_id = shares.get_by_label("Downtown & Midtown", exact=True).get_attribute("id")
    second_id = shares.get_by_label("Everyone", exact=True).get_attribute("id")
    page.fill(f"#{first_id}", "70")
    page.fill(f"#{second_id}", "40")
    expect(page.locator("#broadcasts-ratio-sum")).to_have_text("110")
    page.locator(f"#{second_id}").press("Tab")
    expect(page.locator("#broadcasts-segments-error")).to_contain_text("add up to 110 %")
    expect(page.locator(f"#{second_id}")).to_have_value("40")
    save_field(page, f"#{second_id}", "30")
    expect(page.locator("#broadcasts-segments-saved")).to_be_visible()
    expect(page.locator("#broadcasts-ratio-sum")).to_have_text("100")

    # Reschedule: a one-off time three days from now, shown as the next run; then cleared.
    day = (datetime.now(ZONE) + timedelta(days=3)).date()
    page.fill("#broadcasts-field-run_at input[name=run_date]", day.isoformat())
    page.select_option("#broadcasts-run_time", "14:15")
    page.click("#broadcasts-reschedule")
    expect(page.locator("#broadcasts-run_at-saved")).to_be_visible()
    next_run = page.locator("#broadcasts-next-run")
    expect(next_run).to_contain_text("One-off time")
    expect(next_run).to_contain_text(f"{day:%b} {day.day}, {day.year} 2:15 PM")
    screenshot(page, "broadcasts-index-1280.png")

    page.set_viewport_size(SIDEBAR)
    page.reload()
    assert horizontal_overflow(page) <= 1
    screenshot(page, "broadcasts-index-320.png")
    page.click("#broadcasts-reschedule-clear")
    expect(page.locator("#broadcasts-next-run")).not_to_contain_text("One-off time")
    expect(page.locator("#broadcasts-reschedule-clear")).to_have_count(0)
    page.set_viewport_size(DESKTOP)

    # Everything survived a reload.
    page.reload()
    expect(page.locator(first)).to_have_value(
        "Council meets tonight at 7 at the library. Reply with questions!"
    )
    expect(page.locator("#broadcasts-batch_size")).to_have_value("25")
    expect(page.locator(f"#{first_id}")).to_have_value("70")
    no_problems(problems, allowed_status=(422,))


def test_operator_sends_now_and_watches_the_progress_reach_done(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    plant_history(8)
    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto("/broadcasts/")
    # A small batch, no follow-up: the broadcast is done once every first message went out.
    save_field(page, "#broadcasts-second_message", "")
    expect(page.locator("#broadcasts-second_message-saved")).to_be_visible()
    save_field(page, "#broadcasts-batch_size", "30")
    expect(page.locator("#broadcasts-batch_size-saved")).to_be_visible()

    page.click("#broadcasts-send-now")
    count = page.locator("#broadcasts-send-now-count")
    expect(count).to_be_visible()
    recipients = int(count.inner_text().replace(",", ""))
    assert 0 < recipients <= 30
    # Cancel closes the question; nothing was sent.
    page.locator("#broadcasts-send-now-confirm").get_by_role("button", name="Cancel").click()
    expect(page.locator("#broadcasts-send-now-confirm")).to_have_count(0)
    page.click("#broadcasts-send-now")
    with page.expect_navigation():
        page.click("#broadcasts-send-now-go")
    expect(page).to_have_url(re.compile(r"/broadcasts/\d+$"))
    broadcast_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#flash")).to_contain_text(f"sending to {recipients} recipients")
    bar = page.locator(f"#broadcasts-progress-bar-{broadcast_id}")
    expect(bar).to_be_visible()
    assert bar.get_attribute("max") == str(recipients)
    assert page.locator(f"#broadcasts-progress-{broadcast_id}").get_attribute("hx-trigger") == (
        "every 2s"
    )
    screenshot(page, "broadcasts-sending-1280.png")
    # Nothing has gone out yet: the per-recipient table lists queued messages.
    rows = page.locator("#broadcasts-recipients tbody tr")
    expect(rows.first).to_contain_text("queued")
    watched = page.locator(f"#{rows.first.get_attribute('id')}")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Only now does a worker (and the scheduler for the simulator's receipts) start.
    processes = [
        start_worker_py(args, live_server.env)
        for args in (["worker"], ["scheduler", "--interval", "1"])
    ]
    try:
        # The table follows the progress by itself: the watched row leaves "queued".
        expect(watched).not_to_contain_text("queued", timeout=60_000)
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
        done = page.locator(f"#broadcasts-done-{broadcast_id}")
        expect(done).to_be_visible(timeout=60_000)
        # The poll that found it done refreshed the table once more; then it stops listening.
        expect(watched).to_contain_text(re.compile(r"\b(sent|delivered)\b"))
        expect(page.locator("#broadcasts-recipients-live")).to_have_count(0)
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
        expect(bar).to_have_count(0)
        progress = page.locator(f"#broadcasts-progress-{broadcast_id}")
        assert progress.get_attribute("hx-trigger") is None  # polling stopped
        stats = page.locator(f"#broadcasts-stats-{broadcast_id}")
        expect(stats).to_contain_text(re.compile(rf"{recipients}\s*recipients"))
        expect(stats).to_contain_text(re.compile(rf"{recipients}\s*first messages sent"))
        expect(page.locator(f"#broadcasts-funnel-{broadcast_id}")).to_be_visible()
        # The delivery receipts arrive a second later; the figures follow on a reload.
        deadline = time.monotonic() + 30
        delivered_rows = 0
        while time.monotonic() < deadline and not delivered_rows:
            page.goto(f"/broadcasts/{broadcast_id}?status=delivered")
            delivered_rows = page.locator("#broadcasts-recipients tbody tr").count()
            if not delivered_rows:
                time.sleep(1)
        assert delivered_rows > 0
    finally:
        for process in processes:
            kill_tree(process)
    page.goto(f"/broadcasts/{broadcast_id}")
    screenshot(page, "broadcasts-detail-1280.png")
    page.set_viewport_size(SIDEBAR)
    page.reload()
    assert horizontal_overflow(page) <= 1
    screenshot(page, "broadcasts-detail-320.png")

    # The history lists it first; a second send now is refused by the cool-down.
    page.goto("/broadcasts/")
    assert horizontal_overflow(page) <= 1
    expect(page.locator(f"#broadcasts-history-{broadcast_id}")).to_be_visible()
    expect(page.locator("#broadcasts-trend svg")).to_have_count(3)
    screenshot(page, "broadcasts-history-320.png")
    page.click("#broadcasts-send-now")
    expect(page.locator("#broadcasts-send-now-refusal")).to_contain_text(
        "The previous broadcast started less than 2 hours ago"
    )
    page.set_viewport_size(DESKTOP)
    page.reload()
    screenshot(page, "broadcasts-history-1280.png")
    page.goto("/")
    expect(page.locator("#dashboard-last")).to_contain_text(f"Broadcast {broadcast_id}")
    no_problems(problems)
