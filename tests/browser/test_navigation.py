"""Signing in, walking every menu entry, and signing out, as a person would in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from tests.support import OUTPUT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (link id, page heading, path) in the menu's order.
MENU = [
    ("nav-dashboard", "Overview", "/"),
    ("nav-broadcasts", "Broadcasts", "/broadcasts/"),
    ("nav-campaigns", "Campaigns", "/campaigns/"),
    ("nav-segments", "Segments", "/segments/"),
    ("nav-contacts", "Contacts", "/contacts/"),
    ("nav-uploads", "Uploads", "/uploads/"),
    ("nav-system", "System", "/system/"),
    ("nav-settings", "Settings", "/settings/"),
    ("nav-audit", "Audit log", "/audit/"),
]
SIDEBAR = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 800}
LOGIN_PATH = re.compile(r"/auth/login(\?.*)?$")


def screenshot(page: Page, name: str) -> None:
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / name), full_page=True)


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page is wider than the viewport (0 when nothing sticks out)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def click_and_load(page: Page, selector: str):
    """Click a link or button that loads a new page; returns the final page's response."""
    with page.expect_navigation() as navigation:
        page.click(selector)
    return navigation.value


def assert_page_ok(page: Page, heading: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    assert "Something went wrong" not in page.content()


def sign_in(page: Page, server: LiveServer, password: str | None = None):
    page.fill("#email", server.email)
    page.fill("#password", password or server.password)
    return click_and_load(page, "#auth-login-submit")


def test_admin_signs_in_walks_every_menu_entry_and_signs_out(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    response = page.goto("/")
    assert response is not None and response.ok
    expect(page).to_have_url(LOGIN_PATH)
    expect(page.locator("#auth-login-form")).to_be_visible()

    response = sign_in(page, live_server)
    assert response is not None and response.status < 400
    expect(page).to_have_url(f"{live_server.url}/")
    assert_page_ok(page, "Overview")
    screenshot(page, "overview-1280.png")

    for link_id, heading, path in MENU:
        response = click_and_load(page, f"#{link_id}")
        assert response is not None and response.status < 400, f"{link_id}: {response.status}"
        expect(page).to_have_url(f"{live_server.url}{path}")
        assert_page_ok(page, heading)
        expect(page.locator(f"#{link_id}")).to_have_attribute("aria-current", "page")

    click_and_load(page, "#nav-settings")
    response = click_and_load(page, "#settings-users-link")
    assert response is not None and response.status < 400
    assert_page_ok(page, "Users")
    expect(page.locator("#settings-users")).to_contain_text(live_server.email)
    screenshot(page, "settings-users-1280.png")

    # The same pages in Missive's 320-px sidebar: nothing may stick out sideways.
    page.set_viewport_size(SIDEBAR)
    screenshot(page, "settings-users-320.png")
    assert horizontal_overflow(page) <= 1, "settings/users is wider than 320 px"
    for link_id, heading, path in MENU:
        page.goto(path)
        assert_page_ok(page, heading)
        assert horizontal_overflow(page) <= 1, f"{path} is wider than 320 px"
        # The menu scrolls sideways here; app.js keeps the current entry in sight.
        box = page.locator(f"#{link_id}").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320, link_id
        if link_id == "nav-dashboard":
            assert page.evaluate("document.documentElement.scrollWidth") <= 320 + 1
            screenshot(page, "overview-320.png")
    page.set_viewport_size(DESKTOP)

    response = click_and_load(page, "#nav-logout")
    assert response is not None and response.ok
    expect(page).to_have_url(LOGIN_PATH)
    expect(page.locator("#flash")).to_contain_text("You are signed out.")
    expect(page.locator("#nav-logout")).to_have_count(0)

    page.goto("/")
    expect(page).to_have_url(LOGIN_PATH)
    expect(page.locator("#auth-login-form")).to_be_visible()

    assert problems.console_errors == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
    assert problems.failed_responses == []
    assert "Traceback" not in live_server.log()


def test_wrong_password_shows_the_error_and_stays_on_sign_in(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    page.set_viewport_size(SIDEBAR)
    page.goto("/auth/login")
    assert horizontal_overflow(page) <= 1
    screenshot(page, "login-320.png")

    response = sign_in(page, live_server, password="not-the-password")

    assert response is not None and response.status == 401
    expect(page).to_have_url(LOGIN_PATH)
    expect(page.locator("#password-error")).to_have_text(
        "That email and password do not match an active account."
    )
    expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#email")).to_have_value(live_server.email)
    expect(page.locator("#nav-logout")).to_have_count(0)
    screenshot(page, "login-error-320.png")
    assert problems.csp_violations == []
    assert problems.page_errors == []
