"""An operator's script gets a token, as a person would: Settings › API tokens, make one (shown
once), use it against the API, see its last use, revoke it; the API reference renders under
its CSP. In Chromium at 1280 px and at 320 px."""

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


def test_a_token_is_made_used_and_revoked_and_the_reference_renders(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto("/settings/")
    page.click("#settings-api-tokens-link")
    assert_page_ok(page, "API tokens")
    page.fill("#name", "Spreadsheet job")
    page.click("#settings-token-create")
    secret = page.locator("#settings-token-value").inner_text()
    assert secret.startswith("bc_")
    screenshot(page, "api-tokens-1280.png")

    answer = page.request.get(
        f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}
    )
    assert answer.status == 200 and answer.json()["token"]["name"] == "Spreadsheet job"
    page.goto("/settings/api-tokens")
    row = page.locator("tr", has_text="Spreadsheet job").first
    expect(row.locator('td[data-label="Last used"]')).to_contain_text("just now")
    assert secret not in page.content()  # shown once only
    page.set_viewport_size(SIDEBAR)
    page.reload()
    assert horizontal_overflow(page) <= 0
    screenshot(page, "api-tokens-320.png")
    page.set_viewport_size({"width": 1280, "height": 800})
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#flash")).to_contain_text("Revoked Spreadsheet job")
    refused = page.request.get(
        f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}
    )
    assert refused.status == 401

    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Broadcaster API")
    expect(page.locator("#operations-broadcasts-sendUpcomingNow")).to_be_visible()
    screenshot(page, "api-docs-1280.png")
    page.set_viewport_size(SIDEBAR)
    page.reload()
    expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    screenshot(page, "api-docs-320.png")
    no_problems(problems, allowed_status=(401,))
