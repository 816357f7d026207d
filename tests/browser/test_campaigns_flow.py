"""Campaigns end to end, as an operator uses them in Chromium: each kind of target (segments and
labels, an uploaded list, personalized rows from a template) is built on the New campaign page,
its live estimate followed, its confirmation read, and it is sent now; the every-minute tick
starts it, a real worker sends it through the simulator, and the campaign's page shows the live
progress reach done, the funnel, the failures by code, the recipients table and the CSV of
outcomes; on a laptop and in a 320-px sidebar-sized window.

The server is this module's own (database and Redis db of its own), so the figures are exactly
those of the contacts seeded here."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.contacts.phones import display_phone
from bench.common import kill_tree
from tests.browser.conftest import LiveServer, PageProblems, serve
from tests.browser.test_navigation import (
    DESKTOP,
    SIDEBAR,
    assert_page_ok,
    horizontal_overflow,
    sign_in,
)
from tests.browser.test_navigation import screenshot as full_page_screenshot
from tests.support import (
    ROOT,
    database_url_named,
    run_worker_py,
    scratch_database,
    start_worker_py,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ZONE = ZoneInfo("America/Detroit")
DATABASE = scratch_database("e2e_campaigns")
# A Redis db of its own: the server's queues, scheduled receipts and pacing never meet another
# suite's; flushed before the server starts, so no job of an earlier run reaches this database.
REDIS_URL = os.environ.get("TEST_E2E_CAMPAIGNS_REDIS_URL", "redis://127.0.0.1:6379/11")
FAILING_CODE = "30006"  # the simulator fails numbers ending in 0000 with it
TICK = (
    "from app import create_app\n"
    "from app.jobs.tick import tick\n"
    "app = create_app()\n"
    "with app.app_context():\n"
    "    print(tick())\n"
)


# -- the server, and this module's page on it ---------------------------------------------------
@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """This module's server (it overrides the suite's, so `page` and `context` use it)."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    with serve(DATABASE, REDIS_URL, "browser-campaigns-server.log") as server:
        yield server


def engine() -> sa.Engine:
    return sa.create_engine(database_url_named(DATABASE))


def no_problems(problems: PageProblems, server: LiveServer) -> None:
    assert problems.console_errors == []
    assert problems.csp_violations == []
    assert problems.page_errors == []
    assert problems.failed_responses == []
    assert "Traceback" not in server.log()


# -- seeded people -------------------------------------------------------------------------------
@dataclass
class Person:
    phone: str
    name: str
    zip_code: str = "48000"
    skip: bool = False  # in the "leave out" segment
    unsubscribed: bool = False
    excluded: bool = False
    upload_only: bool = False
    label_days_ago: int | None = None  # the label last applied this many days ago
    label_removed: bool = False


def plant(people: list[Person], segments: dict[str, dict], label: str | None) -> None:
    """Contacts, segments (name → rule) and one mirrored Missive label with its conversations,
    written straight to the server's database, as the mirror and earlier imports leave them."""
    now = datetime.now(ZONE)
    with engine().begin() as conn:
        for name, rule in segments.items():
            conn.execute(
                sa.text(
                    "INSERT INTO segments (name, description, rule, created_at, updated_at) "
                    "VALUES (:name, '', CAST(:rule AS json), now(), now())"
                ),
                {"name": name, "rule": _json(rule)},
            )
        label_id = None
        if label:
            label_id = conn.execute(
                sa.text(
                    "INSERT INTO missive_labels (missive_id, name, created_at, updated_at) "
                    "VALUES (:mid, :name, now(), now()) RETURNING id"
                ),
                {"mid": f"label-{uuid.uuid4().hex[:12]}", "name": label},
            ).scalar_one()
        for p in people:
            contact_id = conn.execute(
                sa.text(
                    "INSERT INTO contacts (phone, name, zip_code, attributes, unsubscribed, "
                    "unsubscribed_at, unsubscribe_reason, excluded, excluded_at, exclude_reason, "
                    "source, created_at, updated_at) VALUES (:phone, :name, :zip, "
                    "CAST(:attrs AS json), :unsub, CASE WHEN :unsub THEN now() END, "
                    "CASE WHEN :unsub THEN 'replied STOP' END, :excl, "
                    "CASE WHEN :excl THEN now() END, CASE WHEN :excl THEN 'manual' END, "
                    ":source, now() - interval '40 days', now()) RETURNING id"
                ),
                {
                    "phone": p.phone,
                    "name": p.name,
                    "zip": p.zip_code,
                    "attrs": _json({"flow": "skip"} if p.skip else {}),
                    "unsub": p.unsubscribed,
                    "excl": p.excluded,
                    "source": "upload" if p.upload_only else "conversation",
                },
            ).scalar_one()
            if p.label_days_ago is None or label_id is None:
                continue
            conversation_id = conn.execute(
                sa.text(
                    "INSERT INTO missive_conversations (missive_id, contact_id, phone, closed, "
                    "created_at, updated_at) VALUES (:mid, :cid, :phone, false, now(), now()) "
                    "RETURNING id"
                ),
                {"mid": f"conv-{uuid.uuid4().hex[:12]}", "cid": contact_id, "phone": p.phone},
            ).scalar_one()
            applied = now - timedelta(days=p.label_days_ago)
            conn.execute(
                sa.text(
                    "INSERT INTO missive_conversation_labels (conversation_id, label_id, "
                    "first_applied_at, last_applied_at, removed, removed_at) VALUES (:conv, "
                    ":label, :at, :at, :removed, CASE WHEN :removed THEN now() END)"
                ),
                {
                    "conv": conversation_id,
                    "label": label_id,
                    "at": applied,
                    "removed": p.label_removed,
                },
            )


def _json(value: object) -> str:
    return json.dumps(value)


# -- the campaign's life outside the browser -----------------------------------------------------
def campaign_row(campaign_id: int) -> sa.Row:
    with engine().connect() as conn:
        return conn.execute(
            sa.text("SELECT status, run_at, actual_recipients FROM campaigns WHERE id = :id"),
            {"id": campaign_id},
        ).one()


def the_minute_passes(campaign_id: int) -> None:
    """ "Send now" runs a minute after it was confirmed (time to take it back): the test does not
    wait for it, the run time is moved a minute earlier."""
    with engine().begin() as conn:
        moved = conn.execute(
            sa.text(
                "UPDATE campaigns SET run_at = run_at - interval '61 seconds' "
                "WHERE id = :id AND status = 'scheduled'"
            ),
            {"id": campaign_id},
        ).rowcount
    assert moved == 1


def run_tick(server: LiveServer) -> str:
    """One pass of the every-minute tick, in a process of its own as the scheduler's worker runs
    it: it starts the due campaign (rows written, sending enqueued); no worker sends yet."""
    done = subprocess.run(
        [sys.executable, "-c", TICK],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_jobs(server: LiveServer) -> None:
    """A real RQ worker runs the waiting jobs (an upload's check or import), then exits."""
    done = run_worker_py(["worker", "--burst"], server.env)
    assert done.returncode == 0, done.stderr[-3000:]


@contextlib.contextmanager
def sending(server: LiveServer) -> Iterator[None]:
    """A real worker, and the scheduler (polling every second) that moves the simulator's
    receipts and runs the every-minute tick, for as long as the block runs."""
    processes = [
        start_worker_py(args, server.env) for args in (["worker"], ["scheduler", "--interval", "1"])
    ]
    try:
        yield
    finally:
        for process in processes:
            kill_tree(process)


# -- what a person does on the pages -------------------------------------------------------------
def count(n: int) -> str:
    return f"{n:,}"


def estimate(page: Page):
    return page.locator("#campaigns-estimate-count")


def add_condition(page: Page, at: str, name: str, button: str) -> None:
    """Pick a segment or label in one of the builder's pickers and press its button; the server
    re-renders the builder, which asks for the estimate again."""
    page.select_option(f"#campaigns-add-{at}", label=name)
    with page.expect_response(re.compile(r"/campaigns/targeting$")):
        page.locator(f"#campaigns-add-{at} + button", has_text=button).click()


def review(page: Page) -> None:
    with page.expect_response(re.compile(r"/campaigns/preview$")) as response:
        page.get_by_role("button", name="Review").click()
    assert response.value.status == 200, response.value.text()[:2000]
    expect(page.locator("#campaigns-review")).to_be_visible()


def send_in_a_minute(page: Page) -> int:
    """Confirm "Send now" from the review; returns the campaign's id from its page's URL."""
    with page.expect_navigation(url=re.compile(r"/campaigns/\d+$")):
        page.get_by_role("button", name="Send in a minute").click()
    return int(page.url.rsplit("/", 1)[1])


def screenshot(page: Page, name: str) -> None:
    """The whole page, scrolled to the top first (else the sticky header is drawn mid-page)."""
    page.evaluate("window.scrollTo(0, 0)")
    full_page_screenshot(page, name)


def no_overflow(page: Page, width: int, what: str) -> None:
    assert horizontal_overflow(page) <= 1, f"{what} is wider than {width} px"


def upload_csv(page: Page, server: LiveServer, name: str, content: str) -> None:
    """Choose the file, upload it, let a worker check it, and wait for the report in place."""
    page.locator("#campaigns-file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": content.encode()}
    )
    with page.expect_response(re.compile(r"/campaigns/upload$")) as response:
        page.get_by_role("button", name="Upload and check").click()
    assert response.value.status == 200, response.value.text()[:2000]
    expect(page.locator("#campaigns-upload-state")).to_contain_text("Checking every row")
    run_jobs(server)
    # The step polls itself every 2 s; the report replaces the progress.
    expect(page.locator("#uploads-summary")).to_be_visible(timeout=10_000)
    expect(page.locator("#campaigns-upload-state")).to_contain_text("Checked.")


def import_rows(page: Page, server: LiveServer, valid: int) -> None:
    button = page.get_by_role("button", name=f"Import {valid} contact")
    with page.expect_response(re.compile(r"/import$")):
        button.click()
    run_jobs(server)
    expect(page.locator("#uploads-done")).to_be_visible(timeout=10_000)
    expect(page.locator("#campaigns-upload-state")).to_contain_text("Imported")


def watch_it_send(
    page: Page, server: LiveServer, campaign_id: int, recipients: int, shot: str
) -> None:
    """From the campaign's page right after "Send in a minute": the minute passes, the tick
    starts it, the page shows its progress, and a real worker sends it while the page polls."""
    expect(page.locator("#flash")).to_contain_text("scheduled for")
    expect(page.locator(f"#campaigns-estimate-count-{campaign_id}")).to_have_text(count(recipients))
    expect(page.locator(f"#campaigns-when-{campaign_id}")).to_contain_text("Sends")
    # It starts in a minute: the page counts down and watches for the start.
    starting = page.locator(f"#campaigns-starting-{campaign_id}")
    expect(starting).to_contain_text(re.compile(r"Starts at \d{1,2}:\d\d [AP]M \w+ \(in "))
    assert starting.get_attribute("hx-trigger") == "every 5s"
    screenshot(page, f"{shot}-scheduled.png")

    the_minute_passes(campaign_id)
    run_tick(server)
    row = campaign_row(campaign_id)
    assert (row.status, row.actual_recipients) == ("sending", recipients)
    # No reload: within 5 s the page sees the start and reloads itself into the progress.
    bar = page.locator(f"#campaigns-progress-bar-{campaign_id}")
    expect(bar).to_be_visible(timeout=15_000)
    expect(starting).to_have_count(0)
    when = page.locator(f"#campaigns-when-{campaign_id}")
    expect(when).to_contain_text("Started")
    expect(when).not_to_contain_text("on schedule")
    assert bar.get_attribute("max") == str(recipients)
    progress = page.locator(f"#campaigns-progress-{campaign_id}")
    assert progress.get_attribute("hx-trigger") == "every 2s"
    expect(page.locator(f"#campaigns-progress-text-{campaign_id}")).to_contain_text(
        f"0 of {recipients} first messages done"
    )
    screenshot(page, f"{shot}-sending.png")

    with sending(server):
        # No reload: the progress polls itself until the campaign is done.
        expect(page.locator(f"#campaigns-done-{campaign_id}")).to_be_visible(timeout=60_000)
        expect(bar).to_have_count(0)
        assert progress.get_attribute("hx-trigger") is None  # polling stopped
        stats = page.locator(f"#campaigns-stats-{campaign_id}")
        expect(stats).to_contain_text(re.compile(rf"{recipients}\s*recipients"))
        expect(stats).to_contain_text(re.compile(rf"{recipients}\s*first messages sent"))
        wait_for_receipts(page, campaign_id)
    assert campaign_row(campaign_id).status == "sent"


def wait_for_receipts(page: Page, campaign_id: int, timeout: float = 30) -> None:
    """The simulator's receipts come a second after each message; the figures follow (the page
    shows them on a reload once the send is done)."""
    deadline = time.monotonic() + timeout
    rate = page.locator(f"#campaigns-delivery-rate-{campaign_id}")
    while True:
        page.reload()
        note = rate.locator("xpath=..").inner_text()
        if "awaiting receipt" not in note:
            return
        assert time.monotonic() < deadline, f"receipts still awaited: {note}"
        time.sleep(1)


def outcomes_csv(page: Page) -> list[dict[str, str]]:
    """Download the CSV of outcomes from the recipients card, as a person would."""
    with page.expect_download() as download:
        page.get_by_role("link", name="Download outcomes (CSV)").click()
    path = download.value.path()
    assert path is not None
    return list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))


def filter_fits(page: Page, selector: str) -> None:
    """The recipients filter shows its search and status whole: side by side on a laptop,
    one over the other (each the form's width) in a narrow window."""
    form = page.locator(selector).bounding_box()
    search = page.locator(f"{selector} input[type=search]").bounding_box()
    status = page.locator(f"{selector} select").bounding_box()
    assert form and search and status
    for box in (search, status):
        assert (
            box["x"] >= form["x"] - 1 and box["x"] + box["width"] <= form["x"] + form["width"] + 1
        )
    if form["width"] < 400:
        assert status["y"] >= search["y"] + search["height"] - 1  # stacked
        assert min(search["width"], status["width"]) >= form["width"] - 2
    else:
        assert abs(status["y"] - search["y"]) < 2 and status["width"] >= 150


def filter_recipients(page: Page, status_label: str) -> None:
    with page.expect_response(re.compile(r"/campaigns/\d+/recipients")):
        page.get_by_label("Status").select_option(label=status_label)


# -- 1. segments and labels ----------------------------------------------------------------------
def segments_people(exchange: str) -> tuple[list[Person], str, str]:
    """Who is where: segment A is a zip code, "leave out" is an attribute, and the label was
    applied at various times (removed once). Returns (people, zip of A, another zip)."""
    zip_a, zip_other = f"4{exchange}1", f"4{exchange}2"

    def phone(last: int) -> str:
        return f"+1248{exchange}{last:04d}"

    people = [
        Person(phone(101), "Ana Segment", zip_a),
        Person(phone(102), "Ben Segment", zip_a),
        Person(phone(103), "Cleo Upload-only", zip_a, upload_only=True),
        Person(phone(0), "Fail Number", zip_a),
        Person(phone(104), "Dan Unsubscribed", zip_a, unsubscribed=True),
        Person(phone(105), "Eve Excluded", zip_a, excluded=True),
        Person(phone(106), "Finn Left-out", zip_a, skip=True),
        Person(phone(107), "Gus Label", zip_other, label_days_ago=2),
        Person(phone(108), "Hana Label", zip_other, label_days_ago=5),
        Person(phone(109), "Ida Old-label", zip_other, label_days_ago=30),
        Person(phone(110), "Jo Removed-label", zip_other, label_days_ago=2, label_removed=True),
        Person(phone(111), "Kai Both", zip_a, label_days_ago=1),
        Person(phone(112), "Lu Label-left-out", zip_other, label_days_ago=3, skip=True),
        Person(phone(113), "Mo Label-unsubscribed", zip_other, label_days_ago=3, unsubscribed=True),
        Person(phone(114), "Nia Nobody", zip_other),
    ]
    return people, zip_a, zip_other


SINCE_DAYS = 10


def reached(
    people: list[Person], zip_a: str, *, label: bool, since: bool, leave_out: bool
) -> list[Person]:
    """Who the builder's target reaches at each step, from the seeded facts (SPEC 5)."""

    def matches(p: Person) -> bool:
        if p.unsubscribed or p.excluded:
            return False
        has_label = p.label_days_ago is not None and not p.label_removed
        if since:
            has_label = has_label and p.label_days_ago <= SINCE_DAYS
        included = p.zip_code == zip_a or (label and has_label)
        return included and not (leave_out and p.skip)

    return [p for p in people if matches(p)]


@pytest.mark.parametrize("viewport", [DESKTOP, SIDEBAR], ids=["1280", "320"])
def test_segments_and_labels_campaign_is_built_with_a_live_estimate_reviewed_sent_and_read(
    page: Page, live_server: LiveServer, problems: PageProblems, viewport
):
    width = viewport["width"]
    exchange = {1280: "561", 320: "562"}[width]
    people, zip_a, _ = segments_people(exchange)
    segment_a, leave_out, label = f"Zip {zip_a}", f"Left out {width}", f"Readers {width}"
    plant(
        people,
        {
            segment_a: {"all": [{"type": "zip_code", "op": "in", "values": [zip_a]}]},
            leave_out: {
                "all": [{"type": "attribute", "key": "flow", "op": "equals", "value": "skip"}]
            },
        },
        label,
    )
    only_a = reached(people, zip_a, label=False, since=False, leave_out=False)
    a_or_label = reached(people, zip_a, label=True, since=False, leave_out=False)
    a_or_recent = reached(people, zip_a, label=True, since=True, leave_out=False)
    final = reached(people, zip_a, label=True, since=True, leave_out=True)
    assert len({len(only_a), len(a_or_label), len(a_or_recent), len(final)}) == 4
    failing = [p for p in final if p.phone.endswith("0000")]
    assert len(failing) == 1

    page.set_viewport_size(viewport)
    page.goto("/campaigns/")
    sign_in(page, live_server)
    assert_page_ok(page, "Campaigns")
    with page.expect_navigation():
        page.get_by_role("button", name="New campaign").click()
    assert_page_ok(page, "New campaign")
    title = f"Bus routes {width}"
    page.get_by_label("Title").fill(title)

    # Include = (segment A) OR (label since a date); exclude = (the leave-out segment).
    add_condition(page, "include", segment_a, "Add")
    expect(estimate(page)).to_have_text(count(len(only_a)))
    add_condition(page, "include", label, "+ another group (or)")
    expect(page.locator("#campaigns-include-1-0")).to_be_visible()
    expect(estimate(page)).to_have_text(count(len(a_or_label)))
    since = (datetime.now(ZONE) - timedelta(days=SINCE_DAYS)).date().isoformat()
    page.locator("#campaigns-include-1-0").get_by_label("Label applied on or after").fill(since)
    expect(estimate(page)).to_have_text(count(len(a_or_recent)))
    add_condition(page, "exclude", leave_out, "Add")
    expect(page.locator("#campaigns-exclude-0-0")).to_be_visible()
    expect(estimate(page)).to_have_text(count(len(final)))

    text = "The bus routes change on Monday: see the new map at the library or reply MAP."
    page.get_by_label("First message").fill(text)
    expect(page.locator("#campaigns-first_message-count")).to_contain_text("1 SMS")
    page.get_by_label("Send now").check()
    no_overflow(page, width, "/campaigns/new")
    screenshot(page, f"campaigns-flow-segments-new-{width}.png")

    review(page)
    expect(page.locator("#campaigns-review-recipients")).to_have_text(count(len(final)))
    expect(page.locator("#campaigns-review-segments")).to_have_text(count(len(final)))
    expect(page.locator("#campaigns-review-duration")).to_have_text("under a minute")
    messages = page.locator("#campaigns-review-messages")
    expect(messages).to_contain_text(text)
    expect(messages).to_contain_text("1 SMS")
    expect(messages).to_contain_text("GSM-7")
    expect(page.locator("#campaigns-review-when")).to_contain_text("Now")
    no_overflow(page, width, "the review")
    screenshot(page, f"campaigns-flow-segments-review-{width}.png")

    campaign_id = send_in_a_minute(page)
    assert_page_ok(page, title)
    watch_it_send(page, live_server, campaign_id, len(final), f"campaigns-flow-segments-{width}")

    # The results: the failure by code, the failed person in the table, everyone in the CSV.
    failures = page.locator(f"#campaigns-failures-{campaign_id}")
    expect(failures).to_contain_text(FAILING_CODE)
    expect(page.locator(f"#campaigns-funnel-{campaign_id}")).to_contain_text("Recipients")
    card = page.locator("#campaigns-recipients-card")
    expect(card.locator("tbody tr")).to_have_count(len(final))
    # Each row says its step and the text that went out.
    expect(card.locator("tbody tr").first).to_contain_text("First")
    expect(card.locator("tbody tr .sms-clip").first).to_have_text(text)
    filter_recipients(page, "Did not get it")
    expect(card.locator("tbody tr")).to_have_count(1)
    expect(card.locator("tbody tr")).to_contain_text(display_phone(failing[0].phone, "US"))
    expect(card.locator("tbody tr")).to_contain_text(FAILING_CODE)
    filter_fits(page, "#campaigns-recipients-card form.filters")
    assert page.locator(f"#campaigns-not-sent-{campaign_id}").count() == 0  # no file
    no_overflow(page, width, f"/campaigns/{campaign_id}")
    screenshot(page, f"campaigns-flow-segments-done-{width}.png")

    rows = outcomes_csv(page)
    assert sorted(r["phone"] for r in rows) == sorted(p.phone for p in final)
    assert {(r["step"], r["body"]) for r in rows} == {("first", text)}
    by_phone = {r["phone"]: r for r in rows}
    bad = by_phone[failing[0].phone]
    assert (bad["got it"], bad["error code"]) == ("no", FAILING_CODE)
    assert {r["got it"] for r in rows if r["phone"] != failing[0].phone} == {"yes"}

    # The campaigns index lists it in the history, with its figures.
    page.get_by_role("link", name="Campaigns").first.click()
    history = page.locator(f"#campaigns-history-{campaign_id}")
    expect(history).to_contain_text(title)
    expect(history).to_contain_text(str(len(final)))
    no_overflow(page, width, "/campaigns/")
    no_problems(problems, live_server)


def contacts_source(phones: list[str]) -> dict[str, str]:
    with engine().connect() as conn:
        rows = conn.execute(
            sa.text("SELECT phone, source FROM contacts WHERE phone = ANY(:phones)"),
            {"phones": phones},
        ).all()
    return dict(rows)


# -- 2. an uploaded list -------------------------------------------------------------------------
@pytest.mark.parametrize("viewport", [DESKTOP, SIDEBAR], ids=["1280", "320"])
def test_uploaded_list_campaign_checks_the_file_imports_it_and_sends_to_its_people(
    page: Page, live_server: LiveServer, problems: PageProblems, viewport
):
    width = viewport["width"]
    exchange = {1280: "571", 320: "572"}[width]
    unsubscribed = f"+1248{exchange}0199"
    plant([Person(unsubscribed, "Una Unsubscribed", unsubscribed=True)], {}, None)
    # A header row, three numbers written three ways, one again (a duplicate), a number that
    # is not one, the unsubscribed contact, and a number the simulator fails.
    lines = [
        "Phone,Name",
        f"(248) {exchange}-0101,Ada Upload",
        f"248-{exchange}-0102,Bo Upload",
        f"+1 248 {exchange} 0103,Cy Upload",
        f"248.{exchange}.0101,Ada Again",
        "555-12,Too short",
        f"248-{exchange}-0199,Una Unsubscribed",
        f"248-{exchange}-0000,Fay Failing",
    ]
    reachable = [f"+1248{exchange}{last}" for last in ("0101", "0102", "0103", "0000")]
    failing = f"+1248{exchange}0000"

    page.set_viewport_size(viewport)
    page.goto("/campaigns/new")
    sign_in(page, live_server)
    assert_page_ok(page, "New campaign")
    title = f"Readers list {width}"
    page.get_by_label("Title").fill(title)
    page.get_by_label("An uploaded list").check()
    expect(page.locator("#campaigns-file")).to_be_visible()
    expect(page.locator("#campaigns-estimate-problem")).to_contain_text("Upload a CSV file first")

    upload_csv(page, live_server, f"readers-{width}.csv", "\n".join(lines) + "\n")
    # The report, inline: the header is not a row; every problem is counted and listed.
    expect(page.locator("#uploads-summary")).to_contain_text("7")
    expect(page.locator("#uploads-invalid")).to_have_text("1")
    expect(page.locator("#uploads-duplicates")).to_have_text("1")
    expect(page.locator("#uploads-unsubscribed")).to_have_text("1")
    issues = page.locator("#uploads-issues")
    expect(issues).to_contain_text("invalid number")
    expect(issues).to_contain_text("duplicate")
    expect(issues).to_contain_text("unsubscribed")
    expect(issues).to_contain_text("555-12")
    if width == 320:  # stacked rows: each row number says it is one
        expect(issues.locator("tbody tr .cell-label").first).to_be_visible()
        expect(issues.locator("tbody tr td").first).to_have_text(re.compile(r"^Row\s*\d+$"))
    # The unsubscribed person's number is a valid row: imported, and kept out of sends.
    valid = len(reachable) + 1
    expect(page.locator("#uploads-valid")).to_have_text(str(valid))
    no_overflow(page, width, "the upload report")
    screenshot(page, f"campaigns-flow-list-report-{width}.png")

    import_rows(page, live_server, valid)
    # Unsubscribed people are never counted.
    expect(estimate(page)).to_have_text(count(len(reachable)))
    assert set(contacts_source(reachable[:3]).values()) == {"upload"}

    text = "Thanks for reading! Our voter guide is out: reply GUIDE and we text you the link."
    page.get_by_label("First message").fill(text)
    expect(page.locator("#campaigns-first_message-count")).to_contain_text("1 SMS")
    page.get_by_label("Send now").check()
    no_overflow(page, width, "/campaigns/new")
    screenshot(page, f"campaigns-flow-list-new-{width}.png")

    review(page)
    expect(page.locator("#campaigns-review-recipients")).to_have_text(count(len(reachable)))
    expect(page.locator("#campaigns-review-segments")).to_have_text(count(len(reachable)))
    expect(page.locator("#campaigns-review-duration")).to_have_text("under a minute")
    expect(page.locator("#campaigns-review-messages")).to_contain_text(text)
    no_overflow(page, width, "the review")
    screenshot(page, f"campaigns-flow-list-review-{width}.png")

    campaign_id = send_in_a_minute(page)
    assert_page_ok(page, title)
    expect(page.locator(f"#campaigns-target-{campaign_id}")).to_contain_text("readers-")
    watch_it_send(page, live_server, campaign_id, len(reachable), f"campaigns-flow-list-{width}")

    expect(page.locator(f"#campaigns-failures-{campaign_id}")).to_contain_text(FAILING_CODE)
    card = page.locator("#campaigns-recipients-card")
    expect(card.locator("tbody tr")).to_have_count(len(reachable))
    expect(card).not_to_contain_text(display_phone(unsubscribed, "US"))
    filter_recipients(page, "Did not get it")
    expect(card.locator("tbody tr")).to_have_count(1)
    expect(card.locator("tbody tr")).to_contain_text(display_phone(failing, "US"))
    filter_fits(page, "#campaigns-recipients-card form.filters")
    # The rows of the file that got no text, and why; the rows never imported are in the
    # upload's report.
    not_sent = page.locator(f"#campaigns-not-sent-{campaign_id}")
    expect(not_sent.locator(f"#campaigns-not-sent-count-{campaign_id}")).to_have_text(
        "1 row of the file got no text: unsubscribed (1)."
    )
    expect(not_sent.locator("tbody tr")).to_have_count(1)
    expect(not_sent.locator("tbody tr")).to_contain_text(display_phone(unsubscribed, "US"))
    expect(not_sent.locator("tbody td").first).to_have_text(re.compile(r"^\s*(Row\s*)?7\s*$"))
    label = not_sent.locator("tbody .cell-label").first
    if width == 320:  # stacked: the row number says it is one
        expect(label).to_be_visible()
    else:
        expect(label).to_be_hidden()
    never = not_sent.locator(f"#campaigns-not-imported-{campaign_id}")
    expect(never).to_contain_text("2 other rows of the file were never imported")
    expect(never).to_contain_text("1 invalid row, 1 duplicate")
    no_overflow(page, width, f"/campaigns/{campaign_id}")
    screenshot(page, f"campaigns-flow-list-done-{width}.png")

    rows = outcomes_csv(page)
    assert sorted(r["phone"] for r in rows) == sorted(reachable)
    assert {r["phone"]: r["error code"] for r in rows}[failing] == FAILING_CODE
    assert {r["body"] for r in rows} == {text}
    with page.expect_navigation():
        never.get_by_role("link", name="see the upload’s report").click()
    expect(page.locator("#uploads-issues")).to_contain_text("555-12")
    no_problems(problems, live_server)


# -- 3. personalized rows from a template --------------------------------------------------------
def test_personalized_campaign_fills_a_template_from_each_row_and_skips_a_row_without_a_value(
    page: Page, live_server: LiveServer, problems: PageProblems
):
    exchange = "581"

    def phone(last: str) -> str:
        return f"+1248{exchange}{last}"

    plant([Person(phone("0199"), "Ulla Unsubscribed", unsubscribed=True)], {}, None)
    lines = [
        "phone,first name,place",
        f"248-{exchange}-0101,Ana,Central Library",
        f"248-{exchange}-0102,Bo,Eastside Recreation Center",
        f"248-{exchange}-0103,Zoë,Fire Station 7",
        f"248-{exchange}-0104,Dee,",
        f"248-{exchange}-0199,Ulla,City Hall",
    ]
    texts = {
        phone("0101"): "Hi Ana, vote at Central Library.",
        phone("0102"): "Hi Bo, vote at Eastside Recreation Center.",
        phone("0103"): "Hi Zoë, vote at Fire Station 7.",
    }
    no_place, unsubscribed = phone("0104"), phone("0199")

    page.goto("/campaigns/new")
    sign_in(page, live_server)
    title = "Polling places"
    page.get_by_label("Title").fill(title)
    page.get_by_label("Personalized rows").check()
    expect(page.get_by_label("A template with {column} merge fields")).to_be_checked()
    upload_csv(page, live_server, "polling-places.csv", "\n".join(lines) + "\n")
    expect(page.locator("#uploads-unsubscribed")).to_have_text("1")
    import_rows(page, live_server, int(page.locator("#uploads-valid").inner_text()))

    # The template, written with the file's merge-field buttons.
    merge = page.locator("#campaigns-merge-fields")
    expect(merge.get_by_role("button", name="{first name}")).to_be_visible()
    message = page.get_by_label("First message")
    message.fill("Hi ")
    merge.get_by_role("button", name="{first name}").click()
    page.keyboard.type(", vote at ")
    merge.get_by_role("button", name="{place}").click()
    page.keyboard.type(".")
    expect(message).to_have_value("Hi {first name}, vote at {place}.")
    # Dee has no place: not counted, and the estimate says a row gets no text.
    expect(estimate(page)).to_have_text(count(len(texts)))
    expect(page.locator("#campaigns-estimate-merge")).to_contain_text("1 row has no value")
    page.get_by_label("Send now").check()
    assert horizontal_overflow(page) <= 1
    screenshot(page, "campaigns-flow-personalized-new-1280.png")

    review(page)
    expect(page.locator("#campaigns-review-recipients")).to_have_text(count(len(texts)))
    messages = page.locator("#campaigns-review-messages")
    for phone_number, body in texts.items():
        expect(messages).to_contain_text(body)
        expect(messages).to_contain_text(display_phone(phone_number, "US"))
    expect(messages).not_to_contain_text("{")
    ucs2 = page.locator("#campaigns-review-ucs2")
    expect(ucs2).to_contain_text(f"1 text of {len(texts)} needs UCS-2")
    longest = max(texts.values(), key=len)
    expect(ucs2).to_contain_text(f"The longest: {len(longest)} characters, 1 SMS")
    expect(page.locator("#campaigns-review-longest")).to_have_text(longest)
    issues = page.locator("#campaigns-review-merge")
    expect(issues).to_contain_text(display_phone(no_place, "US"))
    expect(issues).to_contain_text("no value for {place}")
    expect(page.locator("#campaigns-review-segments")).to_have_text(count(len(texts)))
    assert horizontal_overflow(page) <= 1
    screenshot(page, "campaigns-flow-personalized-review-1280.png")

    campaign_id = send_in_a_minute(page)
    assert_page_ok(page, title)
    watch_it_send(page, live_server, campaign_id, len(texts), "campaigns-flow-personalized-1280")

    # Each person got their own text; Dee (no place) and the unsubscribed person got none.
    card = page.locator("#campaigns-recipients-card")
    expect(card.locator("tbody tr")).to_have_count(len(texts))
    expect(card).not_to_contain_text(display_phone(no_place, "US"))
    expect(card).not_to_contain_text(display_phone(unsubscribed, "US"))
    # The table shows each person's own text beside their number.
    for phone_number, body in texts.items():
        expect(
            card.locator("tbody tr").filter(has_text=display_phone(phone_number, "US"))
        ).to_contain_text(body)
    # Dee (no place) and the unsubscribed person are listed with why they got nothing.
    not_sent = page.locator(f"#campaigns-not-sent-{campaign_id}")
    expect(not_sent.locator(f"#campaigns-not-sent-count-{campaign_id}")).to_have_text(
        "2 rows of the file got no text: no value for {place} (1), unsubscribed (1)."
    )
    expect(
        not_sent.locator("tbody tr").filter(has_text=display_phone(no_place, "US"))
    ).to_contain_text("no value for {place}")
    expect(
        not_sent.locator("tbody tr").filter(has_text=display_phone(unsubscribed, "US"))
    ).to_contain_text("unsubscribed")
    assert horizontal_overflow(page) <= 1
    screenshot(page, "campaigns-flow-personalized-done-1280.png")
    rows = outcomes_csv(page)
    assert sorted(r["phone"] for r in rows) == sorted(texts)
    assert {r["got it"] for r in rows} == {"yes"}
    assert {r["phone"]: r["body"] for r in rows} == texts
    # Each recipient's conversation has the same text.
    for phone_number, body in texts.items():
        with page.expect_navigation():
            card.get_by_role("link", name=display_phone(phone_number, "US")).click()
        expect(page.locator("blockquote.sms").filter(has_text=body)).to_have_count(1)
        page.go_back()
    no_problems(problems, live_server)
