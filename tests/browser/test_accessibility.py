"""Every dashboard page in its main states (empty, filled, with form errors, a confirmation open, a
broadcast sending and done) checked by axe-core at 1280 and at 320 px, with a screenshot of each;
a few pages again in the dark colour scheme; and a main flow done with the keyboard alone.

The server is this module's own (database and Redis db of its own): the broadcast sent here
would hold back another module's send now with its 2-hour cool-down."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from bench.common import kill_tree
from tests.browser.axe import describe, violations
from tests.browser.conftest import LiveServer, PageProblems, serve
from tests.browser.htmx import wait_for_htmx
from tests.browser.test_inbound_timeline import post_inbound
from tests.browser.test_navigation import DESKTOP, SIDEBAR, horizontal_overflow, sign_in
from tests.support import (
    OUTPUT_DIR,
    database_url_named,
    run_worker_py,
    scratch_database,
    start_worker_py,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DATABASE = scratch_database("e2e_a11y")
REDIS_URL = os.environ.get("TEST_E2E_A11Y_REDIS_URL", "redis://127.0.0.1:6379/10")
SHOTS = OUTPUT_DIR / "a11y"
# Good rows, a bad phone and a duplicate: the upload report has each kind to show.
CSV = (
    "Phone Number,Name,Zip\n"
    + "".join(f"(313) 555-{300 + i:04d},Reader {i},48226\n" for i in range(12))
    + "555-12,Too short,48226\n(313) 555-0300,Reader 0 again,48226\n"
).encode()


def plant_stuck_message(broadcast_id: int) -> None:
    """A first message left `unknown` after recovery asked the provider, as the engine leaves it."""
    engine = sa.create_engine(database_url_named(DATABASE))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO outbound_messages (broadcast_id, contact_id, step, body, status, "
                "attempts, sms_segments, claimed_at, error_message, created_at, updated_at) "
                "SELECT :b, c.id, 'first', 'Council meets tonight at 7', 'unknown', 1, 1, "
                "now() - interval '20 minutes', "
                "'Needs attention: 2 identical messages found at Twilio', now(), now() "
                "FROM contacts c WHERE NOT EXISTS (SELECT 1 FROM outbound_messages o "
                "WHERE o.contact_id = c.id AND o.broadcast_id = :b) ORDER BY c.id LIMIT 1"
            ),
            {"b": broadcast_id},
        )
    engine.dispose()


def a_recipient(broadcast_id: int) -> tuple[int, str]:
    """(contact id, phone) of someone the broadcast's first message reached."""
    engine = sa.create_engine(database_url_named(DATABASE))
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT c.id, c.phone FROM outbound_messages o JOIN contacts c ON c.id = o.contact_id "
                "WHERE o.broadcast_id = :b AND o.status IN ('sent', 'delivered') ORDER BY c.id LIMIT 1"
            ),
            {"b": broadcast_id},
        ).one()
    engine.dispose()
    return row.id, row.phone


def run_jobs(server: LiveServer) -> None:
    done = run_worker_py(["worker", "--burst"], server.env)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """This module's server (it overrides the suite's, so `page` and `context` use it)."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    with serve(DATABASE, REDIS_URL, "browser-a11y-server.log") as server:
        yield server


class Checker:
    """Runs axe on the page as it is, at both widths, saves a screenshot of each, and collects
    what it finds so that one run lists every page's problems."""

    def __init__(self, page: Page, prefix: str = "") -> None:
        self.page = page
        self.prefix = prefix
        self.found: list[str] = []
        self.checked: list[str] = []
        SHOTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> None:
        page = self.page
        name = self.prefix + name
        page.wait_for_load_state()
        wait_for_htmx(page)
        for size in (DESKTOP, SIDEBAR):
            page.set_viewport_size(size)
            # From the top: a full-page shot of a scrolled page draws the sticky header mid-page.
            page.evaluate("window.scrollTo(0, 0)")
            where = f"{name} at {size['width']} px"
            page.screenshot(path=str(SHOTS / f"{name}-{size['width']}.png"), full_page=True)
            found = violations(page)
            if found:
                self.found.append(describe(found, where))
            if size is SIDEBAR and horizontal_overflow(page) > 1:
                self.found.append(f"{where}: wider than the window")
            self.checked.append(where)
        page.set_viewport_size(DESKTOP)

    def assert_clean(self) -> None:
        assert not self.found, "\n".join(self.found)


# The focused element, and whether it shows a focus ring (an outline of some width).
_FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    id: el.id, tag: el.tagName.toLowerCase(), text: (el.textContent || el.value || "").trim().slice(0, 40),
    ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 1,
    outline: `${style.outlineStyle} ${style.outlineWidth} ${el.matches(":focus-visible")} ${el.name || ""}`,
  };
}"""


def tab_to(page: Page, selector: str, limit: int = 80, back: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the element `selector` has the focus, checking that every
    control passed on the way shows where the focus is."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        focused = page.evaluate(_FOCUSED)
        assert focused["ring"], f"no visible focus on {focused}"
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} was not reached in {limit} presses of Tab")


def focus_is_in(page: Page, selector: str) -> bool:
    return page.evaluate(
        "(s) => { const p = document.querySelector(s); return !!p && p.contains(document.activeElement); }",
        selector,
    )


def test_an_operator_signs_in_and_confirms_with_the_keyboard_alone(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    page.goto("/auth/login")
    # The email field has the focus: type, Tab to the password, Enter signs in.
    page.keyboard.type(live_server.email)
    page.keyboard.press("Tab")
    page.keyboard.type(live_server.password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    # The first Tab shows the skip link; it jumps past the menu.
    tab_to(page, ".skip-link", limit=1)
    assert page.locator(".skip-link").bounding_box()["x"] >= 0
    tab_to(page, "#nav-broadcasts")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Broadcasts")

    # Send now: the confirmation takes the focus; Escape closes it and gives the focus back.
    tab_to(page, "#broadcasts-send-now")
    page.keyboard.press("Enter")
    panel = page.locator("#broadcasts-send-now-confirm")
    expect(panel).to_be_visible()
    page.wait_for_function("() => document.activeElement.closest('#broadcasts-send-now-confirm')")
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    assert page.evaluate("document.activeElement.id") == "broadcasts-send-now"
    # Again, and its own Cancel (or Close) button: the same way back.
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    page.wait_for_function("() => document.activeElement.closest('#broadcasts-send-now-confirm')")
    tab_to(page, "#broadcasts-send-now-confirm [data-dismiss]")
    page.keyboard.press("Enter")
    expect(panel).to_have_count(0)
    assert page.evaluate("document.activeElement.id") == "broadcasts-send-now"

    # A scheduled campaign's Delete… opens with Enter onto its button; Escape closes it.
    page.goto("/campaigns/")
    tab_to(page, "#campaigns-upcoming a[href*='/campaigns/']")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page, "details.confirm-inline > summary")
    page.keyboard.press("Enter")
    delete = page.locator("details.confirm-inline form button[type=submit]")
    expect(delete).to_be_focused()
    page.keyboard.press("Escape")
    expect(delete).to_be_hidden()
    expect(page.locator("details.confirm-inline > summary")).to_be_focused()

    # The campaign review takes the focus; Escape goes back to editing, onto Review.
    page.goto("/campaigns/new")
    page.select_option("#campaigns-add-include", label="Everyone")
    with page.expect_response(re.compile(r"/campaigns/targeting$")):
        page.locator("#campaigns-add-include + button", has_text="Add").click()
    page.get_by_label("First message").fill("The library opens late on Thursday.")
    page.locator("#campaigns-review-button").focus()
    with page.expect_response(re.compile(r"/campaigns/preview$")):
        page.keyboard.press("Enter")
    expect(page.locator("#campaigns-review")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#campaigns-review")).to_have_count(0)
    expect(page.locator("#campaigns-review-button")).to_be_focused()

    # Contacts: search by typing, then open a person from the list.
    page.goto("/contacts/")
    tab_to(page, "#contacts-search")
    with page.expect_response(lambda r: "/contacts/?" in r.url):
        page.keyboard.type("Ben")
    # The count of matches is read out: the list was replaced, so the page's one polite region
    # repeats it.
    expect(page.locator("#live-announcer")).to_have_text(re.compile(r"^\d+ contacts?$"))
    tab_to(page, "#contacts-rows a")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/contacts/\d+$"))
    assert problems.console_errors == [] and problems.page_errors == []
    assert problems.csp_violations == []


def test_every_page_and_state_has_no_serious_axe_violation_at_1280_and_320(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    check = Checker(page)
    page.goto("/auth/login")
    check("login")
    page.fill("#email", live_server.email)
    page.fill("#password", "not the password")
    page.click("#auth-login-submit")
    expect(page.locator(".flash--error, .field-error").first).to_be_visible()
    check("login-error")
    sign_in(page, live_server)

    for path, name in (
        ("/", "overview"),
        ("/broadcasts/", "broadcasts"),
        ("/campaigns/", "campaigns"),
        ("/campaigns/new", "campaign-new"),
        ("/segments/", "segments"),
        ("/segments/new", "segment-new"),
        ("/contacts/", "contacts"),
        ("/contacts/?q=nobody-is-called-this", "contacts-empty"),
        ("/uploads/", "uploads-empty"),
        ("/uploads/new", "upload-new"),
        ("/system/", "system"),
        ("/settings/", "settings"),
        ("/settings/users", "users"),
        ("/settings/api-tokens", "api-tokens"),
        ("/audit/", "audit"),
        ("/no-such-page", "not-found"),
    ):
        page.goto(path)
        check(name)

    # Details pages reached by their lists' links.
    page.goto("/contacts/")
    page.click("#contacts-rows a.phone >> nth=0")
    check("contact")
    page.goto("/segments/")
    page.click("#segments-rows a >> nth=0")
    check("segment")
    page.goto("/campaigns/")
    # The upcoming list's link (a bare /campaigns/ link would match the menu's).
    page.click("#campaigns-upcoming a[href*='/campaigns/'] >> nth=0")
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    check("campaign")
    page.goto("/settings/users")
    page.click("#settings-users a[href*='/settings/users/'] >> nth=0")
    check("user-edit")

    # Form errors.
    page.goto("/campaigns/new")
    page.click("#campaigns-review-button")
    expect(page.locator("#campaigns-form-errors")).to_be_visible()
    check("campaign-new-errors")
    page.goto("/segments/new")
    page.click("#segments-save")
    check("segment-new-errors")
    # A condition the builder refuses: its field is marked, described by the message, focused.
    page.fill("#name", "Zip typo")
    with page.expect_response(re.compile(r"/segments/builder$")):
        page.click("#segments-node-r .rule-group__add button:text('+ Condition')")
    wait_for_htmx(page)
    with page.expect_response(re.compile(r"/segments/builder$")):
        page.select_option("select[name='r.0.type']", "zip_code")
    wait_for_htmx(page)
    page.fill("input[name='r.0.values']", "abc")
    with page.expect_navigation():
        page.click("#segments-save")
    zips = page.locator("input[name='r.0.values']")
    expect(zips).to_have_attribute("aria-invalid", "true")
    expect(zips).to_have_attribute("aria-describedby", "segments-rule-error")
    expect(zips).to_be_focused()
    expect(page.locator("#segments-rule-error")).to_contain_text("is not a US zip code")
    check("segment-builder-error")

    page.goto("/campaigns/")
    page.click("#campaigns-upcoming a[href*='/campaigns/'] >> nth=0")
    page.click("a[id^='campaigns-edit-']")
    check("campaign-edit")

    # A saved change flashes, fades, and leaves no blank band where it was.
    page.goto("/settings/")
    page.click("#settings-quiet-save")
    expect(page.locator("#flash .flash--success")).to_be_visible()
    check("settings-saved")
    expect(page.locator("#flash .flash")).to_have_count(0, timeout=10_000)
    assert page.locator("#flash").evaluate("el => el.getBoundingClientRect().height") == 0

    page.fill("#settings-opt_in", "stop")
    page.click("#settings-keywords-save")
    expect(page.locator("#settings-opt_in-error")).to_be_visible()
    check("settings-errors")

    # A campaign: the review before scheduling (a confirmation), then its page.
    page.goto("/campaigns/new")
    page.select_option("#campaigns-add-include", label="Everyone")
    with page.expect_response(re.compile(r"/campaigns/targeting$")):
        page.locator("#campaigns-add-include + button", has_text="Add").click()
    page.get_by_label("First message").fill(
        "The library opens late on Thursday. Reply with questions."
    )
    with page.expect_response(re.compile(r"/campaigns/preview$")):
        page.click("#campaigns-review-button")
    expect(page.locator("#campaigns-review")).to_be_visible()
    check("campaign-review")

    # An upload: refused when empty, checked by a worker, then imported.
    page.goto("/uploads/new")
    page.set_input_files("#file", {"name": "readers.csv", "mimeType": "text/csv", "buffer": b""})
    page.click("#uploads-submit")
    expect(page.locator("#file-error")).to_be_visible()
    check("upload-new-errors")
    page.set_input_files("#file", {"name": "readers.csv", "mimeType": "text/csv", "buffer": CSV})
    with page.expect_navigation():
        page.click("#uploads-submit")
    expect(page.locator("#uploads-progress")).to_be_visible()
    check("upload-checking")
    run_jobs(live_server)
    expect(page.locator("#uploads-summary")).to_be_visible(timeout=10_000)
    check("upload-report")
    page.click("#uploads-import")
    run_jobs(live_server)
    expect(page.locator("#uploads-done")).to_be_visible(timeout=10_000)
    check("upload-done")
    page.goto("/uploads/")
    check("uploads")

    # The upcoming broadcast: a refused field, then the send-now confirmation.
    page.goto("/broadcasts/")
    page.fill("#broadcasts-batch_size", "0")
    page.locator("#broadcasts-batch_size").press("Tab")
    expect(page.locator("#broadcasts-batch_size-error")).to_be_visible()
    check("broadcasts-field-error")
    page.fill("#broadcasts-batch_size", "20")
    page.locator("#broadcasts-batch_size").press("Tab")
    expect(page.locator("#broadcasts-batch_size-saved")).to_be_visible()
    page.fill("#broadcasts-second_message", "")
    page.locator("#broadcasts-second_message").press("Tab")
    expect(page.locator("#broadcasts-second_message-saved")).to_be_visible()
    page.click("#broadcasts-send-now")
    expect(page.locator("#broadcasts-send-now-confirm")).to_be_visible()
    check("broadcasts-send-now")

    # Sending (no worker yet), its cancel confirmation, then done.
    with page.expect_navigation():
        page.click("#broadcasts-send-now-go")
    expect(page).to_have_url(re.compile(r"/broadcasts/\d+$"))
    broadcast_id = int(page.url.rsplit("/", 1)[1])
    check("broadcast-sending")
    page.click(f"#broadcasts-cancel-button-{broadcast_id}")
    expect(page.locator(f"#broadcasts-cancel-confirm-{broadcast_id}")).to_be_visible()
    check("broadcast-cancel-confirm")
    page.reload()
    processes = [
        start_worker_py(args, live_server.env)
        for args in (["worker"], ["scheduler", "--interval", "1"])
    ]
    try:
        expect(page.locator(f"#broadcasts-done-{broadcast_id}")).to_be_visible(timeout=60_000)
        # The System page with its workers up, its job runs, and a message that needs attention.
        plant_stuck_message(broadcast_id)
        contact_id, phone = a_recipient(broadcast_id)
        post_inbound(live_server, phone, "Please stop texting me")
        page.goto("/system/")
        expect(page.locator("#system-attention-list tbody tr")).to_have_count(1)
        expect(page.locator("#system-opt-outs .review-item")).to_have_count(1)
        check("system-busy")
        page.goto(f"/contacts/{contact_id}")
        expect(page.locator("#contacts-timeline")).to_contain_text("Please stop texting me")
        check("contact-with-messages")
    finally:
        for process in processes:
            kill_tree(process)
    # Back to the broadcast (the page is on the contact's by now), done.
    page.goto(f"/broadcasts/{broadcast_id}")
    expect(page.locator(f"#broadcasts-done-{broadcast_id}")).to_be_visible()
    check("broadcast-done")
    page.goto("/broadcasts/")
    check("broadcasts-history")
    page.goto("/")
    check("overview-after-a-send")
    page.goto("/audit/")
    check("audit-filled")

    print(f"checked {len(check.checked)} page states")
    check.assert_clean()


def test_pages_in_the_dark_colour_scheme_have_no_serious_axe_violation(
    browser, live_server: LiveServer
):
    """Pico's dark theme follows the system's setting; our own colours must hold in it too."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, color_scheme="dark")
    context.set_default_timeout(5_000)
    page = context.new_page()
    try:
        check = Checker(page, prefix="dark-")
        page.goto("/auth/login")
        page.fill("#email", live_server.email)
        page.fill("#password", "not the password")
        page.click("#auth-login-submit")
        expect(page.locator(".field-error").first).to_be_visible()
        check("login-error")
        sign_in(page, live_server)
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(245, 247, 249)", "the page stayed light"
        for path, name in (
            ("/", "overview"),
            ("/broadcasts/", "broadcasts"),
            ("/campaigns/", "campaigns"),
            ("/segments/new", "segment-new"),
            ("/contacts/", "contacts"),
            ("/uploads/", "uploads"),
            ("/system/", "system"),
            ("/settings/", "settings"),
            ("/audit/", "audit"),
        ):
            page.goto(path)
            check(name)
        page.goto("/campaigns/new")
        page.click("#campaigns-review-button")
        expect(page.locator("#campaigns-form-errors")).to_be_visible()
        check("campaign-new-errors")
        page.goto("/broadcasts/")
        page.click("#broadcasts-send-now")
        expect(page.locator("#broadcasts-send-now-confirm")).to_be_visible()
        check("broadcasts-send-now")
        history = page.locator("#broadcasts-history a[href*='/broadcasts/']")
        if history.count():
            history.first.click()
            page.wait_for_load_state()
            check("broadcast-done")
        check.assert_clean()
    finally:
        context.close()
