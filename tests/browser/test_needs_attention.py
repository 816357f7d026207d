"""An operator finds a message the provider could not account for on the System page and
decides its fate, in Chromium, on a laptop and in a 320-px sidebar-sized window."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.contacts.phones import display_phone
from tests.browser.conftest import E2E_DATABASE, LiveServer, PageProblems
from tests.browser.test_navigation import (
    SIDEBAR,
    assert_page_ok,
    horizontal_overflow,
    screenshot,
    sign_in,
)
from tests.support import database_url_named

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def plant_stuck_messages(count: int) -> list[tuple[int, str]]:
    """Messages left `unknown` after recovery asked the provider, as the engine leaves them."""
    engine = sa.create_engine(database_url_named(E2E_DATABASE))
    planted = []
    with engine.begin() as conn:
        broadcast_id = conn.execute(
            sa.text(
                "INSERT INTO broadcasts (first_message, delay_seconds, batch_size, status, "
                "created_at, updated_at) VALUES ('Council meets tonight at 7', 600, 100, 'sent', "
                "now(), now()) RETURNING id"
            )
        ).scalar_one()
        for _ in range(count):
            phone = f"+1734555{uuid.uuid4().int % 10000:04d}"
            contact_id = conn.execute(
                sa.text(
                    "INSERT INTO contacts (phone, attributes, unsubscribed, excluded, source, "
                    "created_at, updated_at) VALUES (:phone, '{}', false, false, 'conversation', "
                    "now(), now()) ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone "
                    "RETURNING id"
                ),
                {"phone": phone},
            ).scalar_one()
            message_id = conn.execute(
                sa.text(
                    "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                    "attempts, sms_segments, claimed_at, error_message, created_at, updated_at) "
                    "VALUES (:b, :c, 'first', 'Council meets tonight at 7', 'unknown', 1, 1, "
                    "now() - interval '20 minutes', "
                    "'Needs attention: 2 identical messages found at Twilio', now(), now()) "
                    "ON CONFLICT DO NOTHING RETURNING id"
                ),
                {"b": broadcast_id, "c": contact_id},
            ).scalar_one()
            planted.append((message_id, phone))
    engine.dispose()
    return planted


def test_operator_resolves_messages_that_need_attention(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    (first_id, first_phone), (second_id, second_phone) = plant_stuck_messages(2)
    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto("/system/")
    assert_page_ok(page, "System")
    attention = page.locator("#system-attention")
    expect(attention).to_contain_text(display_phone(first_phone, "US"))
    expect(attention).to_contain_text("2 identical messages found at Twilio")
    # The counts read in words, in the stored status's colour.
    expect(page.locator("#system-messages .badge--unknown")).to_have_text("outcome unknown")
    expect(page.locator(f"#attention-{first_id} .badge--unknown")).to_have_text("outcome unknown")
    screenshot(page, "system-attention-1280.png")

    # "It was sent" asks first; dismissing the question changes nothing.
    row = page.locator(f"#attention-{first_id}")
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="It was sent").click()
    expect(row).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: f"/system/attention/{first_id}" in r.url) as answer:
        row.get_by_role("button", name="It was sent").click()
    assert answer.value.ok
    expect(page.locator(f"#attention-{first_id}")).to_have_count(0)
    expect(page.locator("#flash")).to_contain_text(f"Message {first_id} is marked as sent")
    expect(page.locator(f"#attention-{second_id}")).to_be_visible()

    # The second one goes out again; the page still works in a sidebar-sized window.
    page.set_viewport_size(SIDEBAR)
    page.reload()
    assert horizontal_overflow(page) <= 1
    screenshot(page, "system-attention-320.png")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: f"/system/attention/{second_id}" in r.url):
        page.locator(f"#attention-{second_id}").get_by_role("button", name="Send again").click()
    expect(page.locator(f"#attention-{second_id}")).to_have_count(0)
    assert display_phone(second_phone, "US") not in page.locator("#system-attention").inner_text()

    assert problems.console_errors == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
