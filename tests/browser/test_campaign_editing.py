"""An operator creates a segments campaign as a person would: picks who receives it (a segment,
minus another), watches the live estimate, writes the text, chooses a time, reviews the
confirmation and schedules it; in Chromium, on a laptop and in a 320-px sidebar-sized window."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from tests.browser.test_navigation import (
    DESKTOP,
    SIDEBAR,
    assert_page_ok,
    click_and_load,
    horizontal_overflow,
    screenshot,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ZONE = ZoneInfo("America/Detroit")


def estimate_count(page: Page) -> int:
    count = page.locator("#campaigns-estimate-count")
    expect(count).to_be_visible()
    return int(count.inner_text().replace(",", ""))


def add_condition(page: Page, at: str, name: str, button: str) -> None:
    """Pick a segment or label in a builder picker and press its button (the builder is
    re-rendered by the server, then the estimate counts again)."""
    page.select_option(f"#campaigns-add-{at}", label=name)
    with page.expect_response(re.compile(r"/campaigns/targeting$")):
        page.locator(f"#campaigns-add-{at} + button", has_text=button).click()
    page.wait_for_load_state("networkidle")  # the re-rendered builder asks for the estimate


@pytest.mark.parametrize("viewport", [DESKTOP, SIDEBAR], ids=["1280", "320"])
def test_operator_creates_a_segments_campaign_sees_the_estimate_reviews_and_schedules_it(
    page: Page, live_server: LiveServer, problems: PageProblems, viewport
):
    page.set_viewport_size(viewport)
    width = viewport["width"]
    page.goto("/campaigns/new")
    sign_in(page, live_server)
    assert_page_ok(page, "New campaign")
    expect(page.locator("#campaigns-estimate-problem")).to_contain_text("Choose at least one")
    assert horizontal_overflow(page) == 0
    screenshot(page, f"campaign-new-{width}.png")

    title = f"Bus routes {width}"
    page.fill("#campaigns-title", title)
    add_condition(page, "include", "Everyone", "Add")
    expect(page.locator("#campaigns-include-0-0")).to_be_visible()
    everyone = estimate_count(page)
    assert everyone > 0
    add_condition(page, "exclude", "Downtown & Midtown", "Add")
    expect(page.locator("#campaigns-exclude-0-0")).to_be_visible()
    expect(page.locator("#campaigns-estimate-count")).not_to_have_text(f"{everyone:,}")
    fewer = estimate_count(page)
    assert 0 < fewer < everyone

    page.fill("#campaigns-first_message", "The bus routes change on Monday: see the new map.")
    expect(page.locator("#campaigns-first_message-count")).to_contain_text("1 SMS")
    page.fill("#campaigns-second_message", "Any question about the new routes? Reply here.")
    expect(page.locator("#campaigns-second_message-count")).to_contain_text("46 characters")
    tomorrow = (datetime.now(ZONE) + timedelta(days=1)).strftime("%Y-%m-%d")
    page.fill('input[name="run_date"]', tomorrow)
    page.select_option("#campaigns-run_time", "10:00")
    assert horizontal_overflow(page) == 0
    screenshot(page, f"campaign-new-filled-{width}.png")

    page.click("#campaigns-review-button")
    review = page.locator("#campaigns-review")
    expect(review).to_be_visible()
    expect(page.locator("#campaigns-review-recipients")).to_have_text(f"{fewer:,}")
    expect(page.locator("#campaigns-review-messages")).to_contain_text("The bus routes change")
    expect(page.locator("#campaigns-review-messages")).to_contain_text("Follow-up")
    expect(page.locator("#campaigns-review-when")).to_contain_text("10:00 AM")
    assert horizontal_overflow(page) == 0
    screenshot(page, f"campaign-review-{width}.png")

    response = click_and_load(page, "#campaigns-schedule")
    assert response.ok
    assert re.search(r"/campaigns/\d+$", page.url)
    assert_page_ok(page, title)
    expect(page.locator("#flash")).to_contain_text("scheduled for")
    assert horizontal_overflow(page) == 0
    screenshot(page, f"campaign-scheduled-{width}.png")
    assert problems.console_errors == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
    assert problems.failed_responses == []
