"""An admin adds a user and finds the change in the audit log (htmx live search), in Chromium."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from tests.browser.test_navigation import assert_page_ok, click_and_load, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_admin_adds_a_user_then_finds_it_in_the_audit_log(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    email = f"reporter-{uuid.uuid4().hex[:6]}@example.org"
    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto("/settings/users")

    # A weak password is refused with the reason under the field, and nothing is added.
    page.fill("#email", email)
    page.fill("#password", "short")
    response = click_and_load(page, "#settings-user-create")
    assert response is not None and response.status == 422
    expect(page.locator("#password-error")).to_contain_text("at least 10 characters")
    expect(page.locator("#settings-users")).not_to_contain_text(email)

    page.fill("#email", email)
    page.fill("#name", "Rita Reporter")
    page.select_option("#role", "operator")
    page.fill("#password", "a-long-enough-password")
    response = click_and_load(page, "#settings-user-create")
    assert response is not None and response.ok
    expect(page.locator("#flash")).to_contain_text(f"{email} can now sign in as operator")
    expect(page.locator("#settings-users")).to_contain_text("Rita Reporter")

    # The audit log's search is an htmx request carrying the CSRF header; it swaps only the rows.
    click_and_load(page, "#nav-audit")
    assert_page_ok(page, "Audit log")
    with page.expect_response(
        lambda r: "/audit/?" in r.url and r.request.headers.get("hx-request")
    ):
        page.fill("#audit-search", email)
    rows = page.locator("#audit-rows")
    expect(rows).to_contain_text(f"Created {email} as operator")
    expect(rows).not_to_contain_text("Signed in")
    # The action reads as a label; the filter shows labels and keeps the stored name as its value.
    expect(rows.locator("strong").first).to_have_text("User added")
    expect(page.locator('#audit-action option[value="user_create"]')).to_have_text("User added")
    expect(page).to_have_url(f"{live_server.url}/audit/?q={email.replace('@', '%40')}&action=")
    screenshot(page, "audit-search-1280.png")
    with page.expect_response(lambda r: "action=user_create" in r.url):
        page.select_option("#audit-action", label="User added")
    expect(rows).to_contain_text(f"Created {email} as operator")
    expect(page).to_have_url(re.compile(r"action=user_create"))

    # Chromium logs the deliberate 422 above as a console error; nothing else may appear.
    assert [e for e in problems.console_errors if "status of 422" not in e] == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
