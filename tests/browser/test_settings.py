"""An admin sets quiet hours, extra keywords and the automatic replies on the Settings page, as a
person would: a refused word says why at its field, the reply counter follows the typing, and
what was saved shows in the sending rules; in Chromium at 1280 px and at 320 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from tests.browser.test_broadcasts import no_problems
from tests.browser.test_navigation import (
    SIDEBAR,
    assert_page_ok,
    horizontal_overflow,
    screenshot,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_admin_sets_quiet_hours_keywords_and_replies(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto("/settings/")
    assert_page_ok(page, "Settings")

    # Quiet hours on, 8:30 AM to 9:00 PM.
    page.check("#settings-quiet-enabled")
    page.select_option("#settings-quiet-start", "08:30")
    page.select_option("#settings-quiet-end", "21:00")
    page.click("#settings-quiet-save")
    expect(page.locator("#flash")).to_contain_text("Quiet hours saved")
    expect(page.locator("#settings-rules")).to_contain_text("sends only 08:30–21:00 recipient time")

    # A word already built in is refused at its field; nothing is saved.
    page.fill("#settings-opt_in", "stop")
    page.click("#settings-keywords-save")
    error = page.locator("#settings-opt_in-error")
    expect(error).to_contain_text("“STOP” is a built-in opt-out word")
    expect(page.locator("#settings-opt_in")).to_have_attribute("aria-invalid", "true")
    page.fill("#settings-opt_in", "subscribe")
    page.fill("#settings-opt_out", "remove me")
    page.click("#settings-keywords-save")
    expect(page.locator("#flash")).to_contain_text("Keywords saved")
    expect(page.locator("#settings-opt_out")).to_have_value("REMOVE ME")

    # The reply counter follows the typing.
    page.fill("#settings-help_reply", "Newsroom texts, weekly. Reply STOP to end, HELP for help.")
    expect(page.locator("#settings-help_reply-count")).to_contain_text("1 SMS (GSM-7)")
    page.locator("#settings-help_reply").press_sequentially(" 🗳")
    expect(page.locator("#settings-help_reply-count")).to_contain_text("UCS-2")
    page.click("#settings-replies-save")
    expect(page.locator("#flash")).to_contain_text("Automatic replies saved")
    screenshot(page, "settings-compliance-1280.png")
    page.set_viewport_size(SIDEBAR)
    page.reload()
    assert horizontal_overflow(page) <= 1
    screenshot(page, "settings-compliance-320.png")

    # Put quiet hours back as the other browser tests expect them (off).
    page.uncheck("#settings-quiet-enabled")
    page.click("#settings-quiet-save")
    expect(page.locator("#settings-rules")).to_contain_text("Quiet hours")
    no_problems(problems, allowed_status=(422,))
