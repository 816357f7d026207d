"""The Missive sidebar in a real cross-site frame: a host page on http://localhost:PORT (playing
Missive, with a stand-in missive.js) frames the app on http://127.0.0.1:PORT at 320×700. Sign
in inside the frame; on the broadcast panel edit a text, reschedule and send now with a real
worker; on the campaign panel create a segments campaign and see its estimate; on the
conversation panel switch conversations and unsubscribe a contact (audited); an expired
session shows the sidebar's sign-in in the frame. Screenshots of every panel at 320 px."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import FrameLocator, Page, expect

from bench.common import kill_tree
from tests.browser.axe import assert_accessible
from tests.browser.conftest import E2E_DATABASE, LiveServer, PageProblems, serve
from tests.browser.htmx import wait_for_htmx
from tests.support import OUTPUT_DIR, database_url_named, free_port, start_worker_py

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ZONE = ZoneInfo("America/Detroit")
HERE = Path(__file__).parent / "missive"
DATABASE = f"{E2E_DATABASE}_sidebar"
REDIS_URL = os.environ.get("TEST_E2E_SIDEBAR_REDIS_URL", "redis://127.0.0.1:6379/12")
FRAME = "#missive-frame"
FRAME_SIZE = {"width": 320, "height": 700}


# -- Missive's stand-in: a host page on another site ------------------------------------------------
class MissiveHost:
    """The host page's server (http://localhost:PORT): host.html, missive.js and the
    conversations Missive would return (`conversations`, filled by the test)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.conversations: dict[str, dict] = {}
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path == "/conversations.json":
                    body, kind = json.dumps(host.conversations).encode(), "application/json"
                elif path in ("/host.html", "/missive.js"):
                    body = (HERE / path.lstrip("/")).read_bytes()
                    kind = "text/html" if path.endswith("html") else "text/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"

    def page_url(self, app_url: str) -> str:
        return f"{self.origin}/host.html?src={app_url}"


@pytest.fixture(scope="module")
def missive() -> Iterator[MissiveHost]:
    host = MissiveHost()
    host.thread.start()
    try:
        yield host
    finally:
        host.server.shutdown()


@pytest.fixture(scope="module")
def live_server(missive: MissiveHost) -> Iterator[LiveServer]:
    """This module's app server: framed by the host's origin, loading its stand-in missive.js."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    with serve(
        DATABASE,
        REDIS_URL,
        "browser-sidebar-server.log",
        SIDEBAR_FRAME_ANCESTORS=missive.origin,
        MISSIVE_JS_URL=f"{missive.origin}/missive.js",
        MISSIVE_FROM_NUMBER="+13135550000",
    ) as server:
        yield server


def engine() -> sa.Engine:
    return sa.create_engine(database_url_named(DATABASE))


# -- helpers -----------------------------------------------------------------------------------------
def frame_of(page: Page) -> FrameLocator:
    return page.frame_locator(FRAME)


def frame_page(page: Page):
    return page.frame(url=re.compile(r"^http://127\.0\.0\.1:\d+/"))


def _poll_frame(page: Page, pattern: str) -> None:
    """Wait until the frame shows a new page whose URL matches, loaded and taking the mouse (its
    document is cross-site: asked through Playwright, not the host). New: each page this returns
    for is marked, so a form that comes back to the same URL is waited for, not the page it left."""
    regex = re.compile(pattern)
    for _ in range(300):  # up to 30 s on a busy machine
        frame = frame_page(page)
        if frame is not None and regex.search(frame.url):
            try:
                if frame.evaluate(_FRESH_AND_READY):
                    frame.evaluate("() => { window.__pollFrameSeen = true; }")
                    takes_the_mouse(page)
                    return
            except PlaywrightError:  # the page went away while asked: the next one is coming
                pass
        page.wait_for_timeout(100)
    raise AssertionError(f"the frame never showed {pattern}: {[f.url for f in page.frames]}")


# Deferred scripts have run (htmx is there) on a page not yet returned by _poll_frame.
_FRESH_AND_READY = (
    "() => !window.__pollFrameSeen && document.readyState === 'complete' && !!window.htmx"
)


def takes_the_mouse(page: Page) -> None:
    """Wait until mouse events over the frame reach its page. The frame is cross-site, drawn by
    its own process, and the browser sends a mouse event to it only once it knows where the
    page is drawn; a click sent before that goes to the host page and is lost without an error.
    (With Chromium's RenderDocument on, headless Chromium sent every mouse event over the frame
    to the host after some navigations inside it, for good: see CHROMIUM_ARGS.)"""
    frame = frame_page(page)
    frame.evaluate(
        """() => { window.__pointerSeen = false;
          document.addEventListener("mousemove", () => { window.__pointerSeen = true; },
                                    { once: true }); }"""
    )
    box = page.locator(FRAME).bounding_box()
    for attempt in range(100):  # up to 10 s
        # Over the frame's bottom corner (the footer), moved a pixel each time: a new event.
        page.mouse.move(box["x"] + 3 + attempt % 2, box["y"] + box["height"] - 3)
        if frame.evaluate("() => window.__pointerSeen"):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"mouse events over the frame never reached its page ({frame.url})")


def idle(page: Page) -> None:
    wait_for_htmx(frame_page(page))


def save_field(page: Page, selector: str, value: str) -> None:
    idle(page)
    field = frame_of(page).locator(selector)
    field.fill(value)
    field.press("Tab")


def shoot(page: Page, name: str) -> None:
    """The whole sidebar page at 320 px: the frame grows to its content for the picture. Each
    state pictured is checked with axe-core too (no serious or critical violation)."""
    frame = frame_page(page)
    frame.wait_for_load_state()
    idle(page)
    assert_accessible(frame, name)
    height = max(frame.evaluate("document.documentElement.scrollHeight"), 700)
    # A cross-site frame paints only what is in the window: the window grows with it.
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": height + 40})
    page.evaluate(f"document.querySelector('{FRAME}').height = {height}")
    frame.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 50)))")
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.locator(FRAME).screenshot(path=str(OUTPUT_DIR / name))
    page.evaluate(f"document.querySelector('{FRAME}').height = 700")
    page.set_viewport_size(viewport)
    takes_the_mouse(page)


def overflow(page: Page) -> int:
    return frame_page(page).evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def no_problems(problems: PageProblems, server: LiveServer, allowed: tuple[int, ...] = ()) -> None:
    assert problems.csp_violations == []
    assert problems.page_errors == []
    unexpected = [line for line in problems.failed_responses if int(line.split()[0]) not in allowed]
    assert unexpected == []
    assert "Traceback" not in server.log()


def plant_conversations(missive: MissiveHost) -> tuple[int, int]:
    """Two contacts: A's conversation is in our Missive mirror; B is known only by the number
    in its conversation. Missive's conversations carry the numbers in their messages' from/to
    fields (A) and in their authors (B)."""
    with engine().begin() as conn:
        ids = []
        for phone, name in (("+13135557001", "Ada Park"), ("+13135557002", "Bo Reyes")):
            ids.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO contacts (phone, name, attributes, unsubscribed, excluded, "
                        "source, created_at, updated_at) VALUES (:phone, :name, CAST('{}' AS json), "
                        "false, false, 'conversation', now(), now()) RETURNING id"
                    ),
                    {"phone": phone, "name": name},
                ).scalar_one()
            )
        conn.execute(
            sa.text(
                "INSERT INTO inbound_messages (phone, contact_id, body, received_at, provider, "
                "provider_id, created_at) VALUES ('+13135557002', :cid, 'See you at the meeting',"
                " now(), 'twilio', 'SMsidebar1', now())"
            ),
            {"cid": ids[1]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO missive_conversations (missive_id, contact_id, phone, closed, "
                "created_at, updated_at) VALUES ('conv-a', :cid, '+13135557001', false, now(), "
                "now())"
            ),
            {"cid": ids[0]},
        )
    ours = {"phone_number": "+13135550000", "name": "Newsroom"}
    missive.conversations = {
        "conv-a": {
            "id": "conv-a",
            "messages": [{"from_field": ours, "to_fields": [{"phone_number": "+13135557001"}]}],
        },
        # As Missive's own Conversation object has it: the number in its authors only.
        "conv-b": {"id": "conv-b", "authors": [{"name": "Bo", "phone_number": "(313) 555-7002"}]},
    }
    return ids[0], ids[1]


# -- the flow -----------------------------------------------------------------------------------------
def test_the_sidebar_works_inside_a_cross_site_frame(
    page: Page, live_server: LiveServer, missive: MissiveHost, problems: PageProblems
):
    page.set_viewport_size({"width": 900, "height": 800})
    page.goto(missive.page_url(f"{live_server.url}/sidebar/broadcasts"))
    # Not signed in: the sidebar's own sign-in, inside the frame (never a refused frame).
    _poll_frame(page, r"/sidebar/login\?next=/sidebar/broadcasts$")
    frame = frame_of(page)
    expect(frame.locator("#auth-login-form")).to_be_visible()
    shoot(page, "sidebar-login-320.png")
    frame.locator("#email").fill(live_server.email)
    frame.locator("#password").fill(live_server.password)
    frame.locator("#auth-login-submit").click()
    _poll_frame(page, r"/sidebar/broadcasts$")
    expect(frame.locator("#broadcasts-upcoming")).to_be_visible()
    cookies = [c for c in page.context.cookies(live_server.url) if c["name"] == "session"]
    assert cookies and cookies[0]["sameSite"] == "None" and cookies[0]["secure"]
    assert cookies[0].get("partitionKey", "").startswith("http://localhost")

    # -- the broadcast panel: edit a text, reschedule, send now with a real worker -----------------
    save_field(page, "#broadcasts-first_message", "Council meets Tuesday at 6 PM: come and ask.")
    expect(frame.locator("#broadcasts-first_message-saved")).to_be_visible()
    save_field(page, "#broadcasts-second_message", "")
    expect(frame.locator("#broadcasts-second_message-saved")).to_be_visible()
    save_field(page, "#broadcasts-batch_size", "12")
    expect(frame.locator("#broadcasts-batch_size-saved")).to_be_visible()
    in_three_days = datetime.now(ZONE) + timedelta(days=3)
    idle(page)
    frame.locator('#broadcasts-field-run_at input[name="run_date"]').fill(
        in_three_days.strftime("%Y-%m-%d")
    )
    frame.locator("#broadcasts-run_time").select_option("14:00")
    frame.locator("#broadcasts-reschedule").click()
    expect(frame.locator("#broadcasts-run_at-saved")).to_be_visible()
    expect(frame.locator("#broadcasts-next-run-time")).to_contain_text(
        in_three_days.strftime("%b %-d")
    )
    expect(frame.locator("#broadcasts-next-run-time")).to_contain_text("2:00 PM")
    shoot(page, "sidebar-broadcasts-320.png")
    assert overflow(page) <= 0

    frame.locator("#broadcasts-send-now").click()
    count = frame.locator("#broadcasts-send-now-count")
    expect(count).to_be_visible()
    recipients = int(count.inner_text().replace(",", ""))
    assert 0 < recipients <= 12
    shoot(page, "sidebar-send-now-320.png")
    frame.locator("#broadcasts-send-now-go").click()
    # It stays in the sidebar: the panel again, saying what it started, with its progress.
    _poll_frame(page, r"/sidebar/broadcasts$")
    expect(frame.locator("#flash")).to_contain_text(f"sending to {recipients} recipients")
    with engine().connect() as conn:
        broadcast_id = conn.execute(
            sa.text("SELECT id FROM broadcasts WHERE status <> 'upcoming' ORDER BY id DESC")
        ).scalar()
    processes = [
        start_worker_py(args, live_server.env)
        for args in (["worker"], ["scheduler", "--interval", "1"])
    ]
    try:
        expect(frame.locator(f"#broadcasts-done-{broadcast_id}")).to_be_visible(timeout=60_000)
    finally:
        for process in processes:
            kill_tree(process)
    # Each recipient's message went to the provider and has its answer (the simulator fails
    # the demo's numbers ending in 0000, which the random batch may hold).
    with engine().connect() as conn:
        answered = conn.execute(
            sa.text(
                "SELECT count(*) FROM outbound_messages WHERE broadcast_id = :b"
                " AND status IN ('sent', 'delivered', 'undelivered', 'failed')"
            ),
            {"b": broadcast_id},
        ).scalar()
    assert answered == recipients
    page.reload()
    _poll_frame(page, r"/sidebar/broadcasts$")
    last = frame.locator("#sidebar-last-broadcast")
    expect(last.locator('[data-figure="recipients"]')).to_have_text(str(recipients))
    frame.locator(f"#sidebar-broadcasts-{broadcast_id} > details > summary").click()
    expect(frame.locator(f"#sidebar-broadcasts-{broadcast_id}")).to_contain_text(
        "Council meets Tuesday"
    )
    frame.locator("#sidebar-schedule > summary").click()
    expect(frame.locator("#broadcasts-schedule-form")).to_be_visible()
    shoot(page, "sidebar-broadcasts-sent-320.png")
    assert overflow(page) <= 0

    # -- the campaign panel: a segments campaign and its estimate -------------------------------
    frame.locator("#sidebar-tab-campaigns").click()
    _poll_frame(page, r"/sidebar/campaigns$")
    frame.locator("#sidebar-campaigns-new").click()
    _poll_frame(page, r"/sidebar/campaigns/new$")
    expect(frame.locator("#campaigns-estimate-problem")).to_contain_text("Choose at least one")
    frame.locator("#campaigns-title").fill("Library hours")
    frame.locator("#campaigns-add-include").select_option(label="Everyone")
    frame.locator("#campaigns-add-include + button", has_text="Add").click()
    expect(frame.locator("#campaigns-include-0-0")).to_be_visible()
    estimate = frame.locator("#campaigns-estimate-count")
    expect(estimate).to_be_visible()
    people = int(estimate.inner_text().replace(",", ""))
    assert people > 0
    frame.locator("#campaigns-first_message").fill("The library opens late on Thursdays now.")
    expect(frame.locator("#campaigns-first_message-count")).to_contain_text("1 SMS")
    tomorrow = datetime.now(ZONE) + timedelta(days=1)
    frame.locator('#campaigns-when input[name="run_date"]').fill(tomorrow.strftime("%Y-%m-%d"))
    frame.locator("#campaigns-run_time").select_option("10:00")
    shoot(page, "sidebar-campaign-new-320.png")
    assert overflow(page) <= 0
    frame.locator("#campaigns-review-button").click()
    expect(frame.locator("#campaigns-review-recipients")).to_have_text(f"{people:,}")
    frame.locator("#campaigns-schedule").click()
    _poll_frame(page, r"/sidebar/campaigns$")
    expect(frame.locator("#flash")).to_contain_text("scheduled for")
    with engine().connect() as conn:
        campaign_id = conn.execute(
            sa.text("SELECT id FROM campaigns WHERE title = 'Library hours'")
        ).scalar_one()
    row = frame.locator(f"#sidebar-campaigns-upcoming-{campaign_id}")
    row.locator("details > summary").first.click()
    expect(row.locator("#campaigns-estimate-count")).to_have_text(f"{people:,}")
    expect(row.locator(f"#campaigns-edit-{campaign_id}")).to_be_visible()
    shoot(page, "sidebar-campaigns-320.png")
    assert overflow(page) <= 0
    # Edit it from its row: the dashboard's form in the frame, back to the panel once saved.
    row.locator(f"#campaigns-edit-{campaign_id}").click()
    _poll_frame(page, rf"/sidebar/campaigns/{campaign_id}/edit$")
    frame.locator("#campaigns-title").fill("Library hours, Thursdays")
    frame.locator("#campaigns-review-button").click()
    frame.locator("#campaigns-schedule").click()
    _poll_frame(page, r"/sidebar/campaigns$")
    expect(frame.locator("#flash")).to_contain_text("Library hours, Thursdays scheduled for")
    # And delete it: the row's confirmation, then the panel says so.
    row.locator("details > summary").first.click()
    expect(row.locator("#campaigns-estimate-count")).to_have_text(f"{people:,}")
    row.locator(f"#campaigns-delete-{campaign_id} > summary").click()
    expect(row.locator(f"#campaigns-delete-go-{campaign_id}")).to_be_visible()
    row.locator(f"#campaigns-delete-go-{campaign_id}").click()
    _poll_frame(page, r"/sidebar/campaigns$")
    expect(frame.locator("#flash")).to_contain_text("Deleted campaign Library hours, Thursdays.")
    expect(frame.locator(f"#sidebar-campaigns-upcoming-{campaign_id}")).to_have_count(0)

    # -- a Missive that never says which conversation is selected: after a few seconds the
    # Contact panel says it needs Missive's sidebar, and looks a contact up by number ----------
    ada, bo = plant_conversations(missive)
    page.check("#silent")  # the stand-in Missive never answers
    frame.locator("#sidebar-tab-conversation").click()
    _poll_frame(page, r"/sidebar/conversation$")
    expect(frame.locator("#sidebar-conversation-outside")).to_be_visible(timeout=20_000)
    expect(frame.locator("#sidebar-conversation-outside")).to_contain_text(
        "needs Missive's sidebar"
    )
    frame.locator("#sidebar-lookup-phone").fill("(313) 555-7001")
    frame.locator("#sidebar-lookup-go").click()
    expect(frame.locator("#sidebar-contact")).to_have_attribute("data-contact", str(ada))
    shoot(page, "sidebar-conversation-outside-320.png")
    page.uncheck("#silent")

    # -- the conversation panel: switch conversations, unsubscribe one --------------------------
    frame.locator("#sidebar-tab-conversation").click()
    _poll_frame(page, r"/sidebar/conversation$")
    expect(frame.locator("#sidebar-conversation-outside")).to_be_hidden()
    expect(frame.locator("#sidebar-conversation-select")).to_contain_text("Select one conversation")
    page.click("#select-a")
    expect(frame.locator("#sidebar-contact")).to_have_attribute("data-contact", str(ada))
    expect(frame.locator("#sidebar-contact")).to_contain_text("Ada Park")
    page.click("#select-both")
    expect(frame.locator("#sidebar-conversation-select")).to_contain_text("several are selected")
    page.click("#select-b")
    expect(frame.locator("#sidebar-contact")).to_have_attribute("data-contact", str(bo))
    expect(frame.locator("#contacts-timeline")).to_contain_text("See you at the meeting")
    shoot(page, "sidebar-conversation-320.png")
    # A dashboard link leaves the frame (the dashboard refuses to be framed): Missive opens it.
    with page.expect_popup() as popup:
        frame.locator("#contacts-timeline a", has_text="Open in the dashboard").click()
    dashboard = popup.value
    dashboard.wait_for_load_state()
    assert re.search(rf"/auth/login\?next=(/|%2F)contacts(/|%2F){bo}$", dashboard.url)
    dashboard.close()
    frame.locator("#contacts-unsubscribe").click()
    expect(frame.locator("#reason-error")).to_contain_text("Say why")
    frame.locator("#reason").fill("Asked by phone to stop")
    frame.locator("#contacts-unsubscribe").click()
    expect(frame.locator("#contacts-status-done")).to_contain_text("Unsubscribed")
    expect(frame.locator("#contacts-resubscribe")).to_be_visible()
    with engine().connect() as conn:
        unsubscribed, reason = conn.execute(
            sa.text("SELECT unsubscribed, unsubscribe_reason FROM contacts WHERE id = :id"),
            {"id": bo},
        ).one()
        audited = conn.execute(
            sa.text(
                "SELECT count(*) FROM audit_log WHERE action = 'contact_unsubscribe' "
                "AND summary LIKE '%Asked by phone to stop%'"
            )
        ).scalar()
    assert unsubscribed and reason == "Asked by phone to stop"
    assert audited == 1
    shoot(page, "sidebar-conversation-unsubscribed-320.png")
    assert overflow(page) <= 0

    # -- the session expires: the next action shows the sidebar's sign-in in the frame ----------
    page.context.clear_cookies()
    frame.locator("#reason").fill("Changed their mind")
    frame.locator("#contacts-resubscribe").click()
    _poll_frame(page, r"/sidebar/login\?next=/sidebar/conversation$")
    expect(frame.locator("#auth-login-form")).to_be_visible()
    # The refused requests of an expired session (401) and the refused reason (422).
    no_problems(problems, live_server, allowed=(401, 422))
