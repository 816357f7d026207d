"""A contact texts back: signed Twilio webhooks reach the live server, and an operator reads the
result on the contact's page in Chromium (the reply linked to what it answers, the follow-up it
cancelled, a near-miss that stays a reply, the STOP that unsubscribes), on a laptop and at 320 px."""

from __future__ import annotations

import re
import urllib.request
import uuid
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.contacts.phones import display_phone
from tests.browser.conftest import E2E_DATABASE, TWILIO_AUTH_TOKEN, LiveServer, PageProblems
from tests.browser.test_navigation import (
    DESKTOP,
    SIDEBAR,
    assert_page_ok,
    horizontal_overflow,
    screenshot,
    sign_in,
)
from tests.support import database_url_named
from tests.webhooks.signing import inbound_params, twilio_signature

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST = "Town hall on Thursday at 7 pm, library annex. Reply if you can make it!"
SECOND = "Reminder: town hall tonight at 7 pm. Bring a neighbour."
INBOUND_PATH = "/webhooks/twilio/inbound"


def plant_broadcast_recipient() -> tuple[int, int, str]:
    """A contact whose broadcast first message went out five minutes ago and whose follow-up is
    scheduled for later, as the engine leaves them. Returns (contact id, broadcast id, phone)."""
    phone = f"+1313555{uuid.uuid4().int % 10000:04d}"
    engine = sa.create_engine(database_url_named(E2E_DATABASE))
    with engine.begin() as conn:
        broadcast_id = conn.execute(
            sa.text(
                "INSERT INTO broadcasts (first_message, second_message, delay_seconds, "
                "batch_size, status, started_at, created_at, updated_at) VALUES (:first, "
                ":second, 3600, 100, 'sending', now() - interval '5 minutes', now(), now()) "
                "RETURNING id"
            ),
            {"first": FIRST, "second": SECOND},
        ).scalar_one()
        contact_id = conn.execute(
            sa.text(
                "INSERT INTO contacts (phone, name, attributes, unsubscribed, excluded, source, "
                "created_at, updated_at) VALUES (:phone, 'Dana Whitfield', '{}', false, false, "
                "'conversation', now() - interval '30 days', now()) RETURNING id"
            ),
            {"phone": phone},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                "transport, provider_sid, provider_status, attempts, sms_segments, sent_at, "
                "created_at, updated_at) VALUES (:b, :c, 'first', :body, 'sent', 'simulator', "
                ":sid, 'sent', 1, 1, now() - interval '5 minutes', "
                "now() - interval '6 minutes', now())"
            ),
            {"b": broadcast_id, "c": contact_id, "body": FIRST, "sid": f"SM{uuid.uuid4().hex}"},
        )
        # An hour after the first message: no worker or tick can send it while the test runs.
        conn.execute(
            sa.text(
                "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                "attempts, sms_segments, scheduled_for, created_at, updated_at) VALUES (:b, :c, "
                "'second', :body, 'scheduled', 0, 1, now() + interval '55 minutes', "
                "now() - interval '6 minutes', now())"
            ),
            {"b": broadcast_id, "c": contact_id, "body": SECOND},
        )
    engine.dispose()
    return contact_id, broadcast_id, phone


def post_inbound(server: LiveServer, phone: str, body: str) -> str:
    """POST an inbound SMS as Twilio does, signed over the server's public URL; returns the TwiML."""
    params = inbound_params(f"SM{uuid.uuid4().hex}", phone, body)
    signature = twilio_signature(server.url + INBOUND_PATH, params, token=TWILIO_AUTH_TOKEN)
    request = urllib.request.Request(
        server.url + INBOUND_PATH,
        data=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def timeline_item(page: Page, text: str):
    return page.locator("#contacts-timeline .timeline__item").filter(has_text=text)


def test_reply_cancels_the_follow_up_and_stop_unsubscribes_on_the_contact_timeline(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    contact_id, broadcast_id, phone = plant_broadcast_recipient()

    # Before anyone looks: the contact answers the broadcast.
    twiml = post_inbound(live_server, phone, "Thanks, see you there")
    assert "<Message>" not in twiml

    page.goto("/auth/login")
    sign_in(page, live_server)
    page.goto(f"/contacts/{contact_id}")
    assert_page_ok(page, display_phone(phone, "US"))
    status_card = page.locator("#contacts-status-card")
    expect(status_card).to_contain_text("subscribed")
    expect(status_card).not_to_contain_text("unsubscribed")

    reply = timeline_item(page, "Thanks, see you there")
    expect(reply).to_have_count(1)
    expect(reply).to_have_class(re.compile(r"\btimeline__item--in\b"))
    expect(reply.locator(".badge")).to_have_text("reply")
    expect(reply).to_contain_text(f"Broadcast #{broadcast_id}")
    expect(reply).to_contain_text("answers the first message")
    first = page.locator("#contacts-timeline .timeline__item--out").filter(has_text="library annex")
    expect(first.locator(".badge")).to_have_text("sent")
    follow_up = timeline_item(page, SECOND)
    expect(follow_up.locator(".badge")).to_have_text("cancelled")
    expect(follow_up).to_contain_text("second message")
    expect(follow_up).to_contain_text("cancelled: replied")
    expect(follow_up.locator(".timeline__when")).to_contain_text("was due")

    # The reply points at the message it answers; following the link lands on that message.
    answers = reply.locator(".timeline__answers")
    expect(answers).to_contain_text("In reply to: Town hall on Thursday")
    first_id = first.get_attribute("id")
    assert first_id and first_id.startswith("contacts-timeline-out-")
    expect(answers).to_have_attribute("href", f"#{first_id}")
    answers.click()
    expect(page).to_have_url(re.compile(f"#{first_id}$"))
    assert page.evaluate("document.querySelector(':target')?.id") == first_id
    box = first.bounding_box()
    assert box is not None and 0 <= box["y"] < 800, "the answered message is not in view"
    page.goto(f"/contacts/{contact_id}")  # back to the top, no fragment, for what follows

    # "stop by later" contains a keyword but is not one: a plain reply, still subscribed.
    post_inbound(live_server, phone, "stop by later")
    page.reload()
    near_miss = timeline_item(page, "stop by later")
    expect(near_miss.locator(".badge")).to_have_text("reply")
    expect(near_miss).to_contain_text("answers the first message")
    expect(near_miss).not_to_contain_text("opt-out")
    expect(status_card).not_to_contain_text("unsubscribed")

    # A whole-message STOP unsubscribes.
    post_inbound(live_server, phone, "STOP")
    page.reload()
    expect(status_card.locator(".badge")).to_have_text("unsubscribed")
    expect(status_card).to_contain_text("texted “STOP”")
    stop = timeline_item(page, "STOP").filter(has_not_text="stop by later")
    expect(stop).to_have_count(1)
    expect(stop.locator(".badge--stop")).to_have_text("STOP")
    expect(stop).to_contain_text("opt-out")
    # Newest first: the STOP, the near-miss, the reply.
    bodies = page.locator("#contacts-timeline .timeline__item blockquote").all_inner_texts()
    assert bodies.index("STOP") < bodies.index("stop by later")
    assert bodies.index("stop by later") < bodies.index("Thanks, see you there")
    screenshot(page, "contact-timeline-1280.png")

    page.set_viewport_size(SIDEBAR)
    page.reload()
    assert horizontal_overflow(page) <= 1, "the contact page is wider than 320 px"
    for item in page.locator("#contacts-timeline .timeline__item").all():
        box = item.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
    screenshot(page, "contact-timeline-320.png")
    page.set_viewport_size(DESKTOP)

    assert problems.console_errors == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
    assert problems.failed_responses == []
    assert "Traceback" not in live_server.log()
