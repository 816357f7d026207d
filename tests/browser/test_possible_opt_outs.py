"""A reply that reads like an opt-out, as an operator meets it: a signed Twilio webhook brings
"Please stop texting me", the overview lists it under Needs attention with the follow-up already
cancelled, and one click unsubscribes the person (the contact page says so); in Chromium at
1280 px and at 320 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from app.contacts.phones import display_phone
from tests.browser.conftest import LiveServer, PageProblems
from tests.browser.test_broadcasts import no_problems
from tests.browser.test_inbound_timeline import plant_broadcast_recipient, post_inbound
from tests.browser.test_navigation import SIDEBAR, horizontal_overflow, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_operator_unsubscribes_a_possible_opt_out_from_the_overview(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    contact_id, _, phone = plant_broadcast_recipient()
    twiml = post_inbound(live_server, phone, "Please stop texting me")
    shown = display_phone(phone, "US")  # how the pages show it
    assert "<Message>" not in twiml  # a reply, not a keyword: nothing answered, nobody unsubscribed

    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto("/")
    card = page.locator("#dashboard-opt-outs")
    item = card.locator(".review-item").filter(has_text=shown)
    expect(item).to_contain_text("Please stop texting me")
    expect(item).to_contain_text("nobody was unsubscribed")
    screenshot(page, "possible-opt-out-1280.png")
    page.set_viewport_size(SIDEBAR)
    page.reload()
    assert horizontal_overflow(page) <= 1
    screenshot(page, "possible-opt-out-320.png")

    page.goto(f"/contacts/{contact_id}")
    expect(page.locator("#contacts-status-card")).not_to_contain_text("unsubscribed")
    page.goto("/")
    page.locator("#dashboard-opt-outs .review-item").filter(has_text=shown).get_by_role(
        "button", name="Unsubscribe"
    ).click()
    expect(page.locator("#flash")).to_contain_text(f"{shown} is unsubscribed")
    expect(
        page.locator("#dashboard-opt-outs-list .review-item").filter(has_text=shown)
    ).to_have_count(0)
    page.goto(f"/contacts/{contact_id}")
    expect(page.locator("#contacts-status-card")).to_contain_text("unsubscribed")
    page.goto("/system/")
    expect(page.locator("#system-opt-outs")).not_to_contain_text(shown)
    no_problems(problems)
