"""The campaign pages: the index (upcoming, sending, history with "show more"), one campaign
before and after it starts (summary, estimate, progress, funnel, recipients, CSV of outcomes),
and the overview's "Next campaign" card."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.campaigns.services import save_campaign, start_campaign
from app.contacts.phones import display_phone
from app.extensions import db
from app.models import Campaign, CampaignStatus, CampaignTarget, MessageStatus, Step, utcnow
from app.sends.stats import finish_sends
from tests.campaigns.builders import (
    ZONE,
    everyone,
    list_input,
    list_upload,
    personalized_input,
    personalized_upload,
    seg,
    segments_input,
)
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MissiveLabelFactory,
    OutboundMessageFactory,
    SegmentFactory,
    UserFactory,
)
from tests.support import HX, by_id


def figures(**values):
    """Stored figures of a finished campaign (the shape app/sends/stats.py stores)."""
    base = dict(
        recipients=40,
        first_sent=38,
        second_sent=12,
        delivered=45,
        failed=3,
        failed_by_code=[["30006", 3]],
        replies=7,
        unsubscribes=2,
        cancelled_by_reply=6,
        segments_used=61,
        delivery_rate=0.9375,
        reply_rate=0.175,
        first_done=40,
        pending=0,
        by_status={"first": {}, "second": {}},
    )
    base.update(values)
    return base


def finished(days_ago: float = 1, **fields) -> Campaign:
    at = utcnow() - timedelta(days=days_ago)
    status = fields.pop("status", CampaignStatus.SENT)
    return CampaignFactory(
        status=status,
        run_at=at,
        started_at=at,
        finished_at=at + timedelta(minutes=5),
        actual_recipients=fields.pop("actual_recipients", 40),
        stats=fields.pop("stats", figures()),
        stats_updated_at=utcnow(),
        **fields,
    )


def scheduled(title: str = "Election night", **fields) -> Campaign:
    """A scheduled segments campaign, saved through the service (estimate stored)."""
    segment = fields.pop("segment", None) or everyone()
    campaign = save_campaign(
        None,
        segments_input([[seg(segment)]], title=title, **fields),
        schedule=True,
        user=None,
        now=utcnow(),
        zone=ZONE,
    )
    db.session.commit()
    return campaign


# -- the index -------------------------------------------------------------------------------
def test_the_index_without_campaigns_says_so_and_only_operators_get_new(client, viewer, operator):
    from tests.conftest import sign_in

    sign_in(client, viewer)
    html = client.get("/campaigns/").get_data(as_text=True)
    assert "No campaign is waiting to send." in by_id(html, "campaigns-upcoming").text
    assert "No campaign has gone out yet" in by_id(html, "campaigns-history").text
    assert 'id="campaigns-new"' not in html and 'id="campaigns-sending"' not in html
    client.post("/auth/logout")
    sign_in(client, operator)
    html = client.get("/campaigns/").get_data(as_text=True)
    assert by_id(html, "campaigns-new").startswith('<a href="/campaigns/new"')


def test_upcoming_campaigns_say_who_when_and_how_many_people_escaped(viewer_client):
    ContactFactory.create_batch(3)
    readers = SegmentFactory(name="Readers <b>")
    staff = SegmentFactory(
        name="Staff", rule={"all": [{"type": "zip_code", "op": "in", "values": ["00000"]}]}
    )
    label = MissiveLabelFactory(name="Detroit")
    campaign = save_campaign(
        None,
        segments_input(
            [[seg(readers), {"type": "label", "label_id": label.id, "since": "2026-11-01"}]],
            [[seg(staff)]],
            title="Vote <today>",
        ),
        schedule=True,
        user=None,
        now=utcnow(),
        zone=ZONE,
    )
    skipped = CampaignFactory(
        title="Missed one",
        status=CampaignStatus.DRAFT,
        status_note="Not sent: its run time passed more than 60 minutes ago.",
    )
    db.session.commit()
    html = viewer_client.get("/campaigns/").get_data(as_text=True)
    row = by_id(html, f"campaigns-upcoming-{campaign.id}")
    assert "Vote &lt;today&gt;" in row and "Readers &lt;b&gt;" in row
    assert "Segments and labels" in row.text
    assert "Segment Readers <b> and Label Detroit since 2026-11-01" in row.text
    assert "except Segment Staff" in row.text
    run_at = campaign.run_at.astimezone(ZoneInfo(ZONE))
    assert run_at.strftime("%b %-d, %Y %-I:%M %p") in row.text
    assert campaign.estimated_recipients == 0 and "0 people" in row.text  # nobody has the label
    note = by_id(html, f"campaigns-note-{skipped.id}")
    assert "run time passed" in note.text
    assert "Not scheduled" in by_id(html, f"campaigns-upcoming-{skipped.id}").text


def test_the_estimate_on_the_index_is_the_stored_one_in_people(viewer_client):
    ContactFactory.create_batch(2)
    campaign = scheduled()
    ContactFactory.create_batch(5)  # after saving: the index shows what was stored
    db.session.commit()
    html = viewer_client.get("/campaigns/").get_data(as_text=True)
    assert campaign.estimated_recipients == 2
    assert "2 people" in by_id(html, f"campaigns-upcoming-{campaign.id}").text


def test_a_sending_campaign_shows_its_live_progress_on_the_index(viewer_client):
    campaign = CampaignFactory(sending=True, title="Storm warning")
    OutboundMessageFactory(campaign=campaign)
    OutboundMessageFactory(campaign=campaign, delivered=True)
    db.session.commit()
    html = viewer_client.get("/campaigns/").get_data(as_text=True)
    progress = by_id(by_id(html, "campaigns-sending"), f"campaigns-progress-{campaign.id}")
    assert 'hx-trigger="every 2s"' in progress
    assert f"/campaigns/{campaign.id}/progress?compact=1" in progress
    assert "Storm warning" in progress.text and "is sending" in progress.text
    assert "1 of 2 first messages done" in progress.text


def test_history_shows_every_figure_and_show_more_appends_rows(viewer_client):
    rows = [
        finished(i + 1, title=f"Past {i}", stats=figures(recipients=100 + i)) for i in range(13)
    ]
    cancelled = rows[1]
    cancelled.status = CampaignStatus.CANCELLED
    db.session.commit()
    html = viewer_client.get("/campaigns/").get_data(as_text=True)
    history = by_id(html, "campaigns-history")
    head = history[history.index("<thead>") : history.index("</thead>")]
    for label, unit in (
        ("Recipients", "people"),
        ("First sent", "people"),
        ("Follow-ups sent", "people"),
        ("Delivered", "messages"),
        ("Failed", "messages"),
        ("Delivery rate", "messages"),
        ("Replied", "people"),
        ("Unsubscribed", "people"),
        ("Cancelled by reply", "follow-ups"),
        ("SMS segments", "the cost"),
    ):
        assert f"{label} <small>{unit}</small>" in head
    first = by_id(history, f"campaigns-history-{rows[0].id}").text
    for value in ("100", "38", "12", "45", "3", "93.8 %", "7", "2", "6", "61"):
        assert value in first
    assert "cancelled" in by_id(history, f"campaigns-history-{cancelled.id}").text
    assert html.count('id="campaigns-history-') - html.count("campaigns-history-more") == 10
    assert f'id="campaigns-history-{rows[10].id}"' not in html
    more = by_id(history, "campaigns-history-more-button")
    assert 'hx-get="/campaigns/history?page=2"' in more

    response = viewer_client.get("/campaigns/history?page=2", headers=HX)
    partial = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in partial
    assert partial.lstrip().startswith("<tr")
    assert all(f'id="campaigns-history-{r.id}"' in partial for r in rows[10:])
    assert "campaigns-history-more" not in partial  # the last page
    assert "Vary" in response.headers and "HX-Request" in response.headers["Vary"]
    full = viewer_client.get("/campaigns/history?page=2")
    assert full.status_code == 302 and full.headers["Location"].endswith("#campaigns-history")


def test_history_never_lists_drafts_or_scheduled_campaigns(viewer_client):
    draft = CampaignFactory()
    db.session.commit()
    html = viewer_client.get("/campaigns/").get_data(as_text=True)
    assert f"campaigns-history-{draft.id}" not in html
    assert f"campaigns-upcoming-{draft.id}" in html


# -- one campaign before it starts -----------------------------------------------------------
def test_before_it_starts_the_page_shows_summary_estimate_and_operator_buttons(
    operator_client,
):
    ContactFactory.create_batch(4)
    campaign = scheduled(
        "Runoff <reminder>", second_message="Reply STOP to opt out", delay_seconds=1200
    )
    ContactFactory()  # one more since it was saved
    db.session.commit()
    html = operator_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    summary = by_id(html, f"campaigns-summary-{campaign.id}")
    assert "Runoff &lt;reminder&gt;" in html
    assert "Segment Everyone" in by_id(summary, f"campaigns-target-{campaign.id}").text
    when = by_id(summary, f"campaigns-when-{campaign.id}").text
    assert "Sends" in when and re.search(r"E[SD]T \(in \d+ (minutes?|hours?|days?)\)", when)
    assert "A note from the newsroom" in summary.text
    assert "Follow-up, 20 min later" in summary.text and "Reply STOP" in summary.text
    estimate = by_id(html, f"campaigns-estimate-{campaign.id}")
    assert by_id(estimate, f"campaigns-estimate-count-{campaign.id}").text == "5"
    assert "4 people when it was saved" in estimate.text
    actions = by_id(html, f"campaigns-actions-{campaign.id}")
    assert f'href="/campaigns/{campaign.id}/edit"' in actions
    assert f'action="/campaigns/{campaign.id}/unschedule"' in actions
    assert f'action="/campaigns/{campaign.id}/delete"' in actions
    assert 'hx-trigger="every 2s"' not in html
    assert "campaigns-recipients-card" not in html  # no results before it starts


def test_viewers_read_a_campaign_without_buttons_and_drafts_cannot_be_unscheduled(
    viewer_client,
):
    draft = CampaignFactory(title="Someday")
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{draft.id}").get_data(as_text=True)
    assert "Draft, no time chosen" in by_id(html, f"campaigns-when-{draft.id}").text
    assert f"campaigns-actions-{draft.id}" not in html
    assert "/edit" not in html and "/delete" not in html


def test_a_target_that_no_longer_works_is_said_on_the_page(viewer_client):
    upload = list_upload(ContactFactory.create_batch(2))
    campaign = save_campaign(
        None, list_input(upload), schedule=False, user=None, now=utcnow(), zone=ZONE
    )
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert by_id(html, f"campaigns-estimate-count-{campaign.id}").text == "2"
    assert upload.filename in by_id(html, f"campaigns-target-{campaign.id}").text
    assert "Uploaded list" in by_id(html, f"campaigns-target-{campaign.id}").text


def test_a_personalized_campaign_shows_its_template_and_rows_missing_a_value(viewer_client):
    people = ContactFactory.create_batch(3)
    upload = personalized_upload(
        [
            (people[0], {"First Name": "Ana", "Place": "Hall A"}),
            (people[1], {"First Name": "Ben", "Place": "Hall B"}),
            (people[2], {"First Name": "", "Place": "Hall C"}),
        ]
    )
    campaign = save_campaign(
        None, personalized_input(upload), schedule=False, user=None, now=utcnow(), zone=ZONE
    )
    column = save_campaign(
        None,
        personalized_input(upload, message_source="column", first_message=""),
        schedule=False,
        user=None,
        now=utcnow(),
        zone=ZONE,
    )
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Hi {first name}, vote at {place}." in by_id(html, f"campaigns-first-{campaign.id}")
    assert "A template" in by_id(html, f"campaigns-summary-{campaign.id}").text
    assert by_id(html, f"campaigns-estimate-count-{campaign.id}").text == "2"
    issues = by_id(html, f"campaigns-merge-issues-{campaign.id}")
    assert "1 row has an empty merge field" in issues.text
    html = viewer_client.get(f"/campaigns/{column.id}").get_data(as_text=True)
    assert "message” column" in by_id(html, f"campaigns-first-{column.id}").text
    assert "Personalized CSV" in by_id(html, f"campaigns-target-{column.id}").text


@pytest.mark.parametrize(
    ("state", "error", "words"),
    [
        ("ready", None, "Election desk: ready"),
        ("pending", None, "Election desk: being created"),
        (
            "failed",
            "Missive is rate limiting us (429); retrying in 60 s.",
            "Election desk: Missive is rate limiting us (429); retrying in 60 s.",
        ),
    ],
)
def test_the_missive_label_state_is_said(app, viewer_client, monkeypatch, state, error, words):
    for key, value in (
        ("TRANSPORT", "missive"),
        ("MISSIVE_API_TOKEN", "token"),
        ("MISSIVE_ORGANIZATION_ID", "org"),
    ):
        monkeypatch.setitem(app.config, key, value)
    campaign = CampaignFactory(
        missive_label_name="Election desk", label_state=state, label_error=error
    )
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert words in by_id(html, f"campaigns-label-{campaign.id}").text
    assert "retrying, retrying" not in html and "Not applied" not in html


def test_a_label_is_said_not_applied_when_the_transport_is_not_missive(viewer_client):
    campaign = CampaignFactory(missive_label_name="Election desk", label_state="ready")
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    said = by_id(html, f"campaigns-label-{campaign.id}").text
    assert "Not applied: Missive labels need the Missive transport" in said
    assert "ready" not in said


def test_a_campaign_without_a_label_says_nothing_of_one(viewer_client):
    campaign = CampaignFactory()
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert f"campaigns-label-{campaign.id}" not in html


def test_missing_campaigns_and_results_of_unstarted_ones_are_404(viewer_client):
    draft = CampaignFactory()
    db.session.commit()
    assert viewer_client.get("/campaigns/999999").status_code == 404
    for what in ("progress", "recipients", "outcomes.csv"):
        assert viewer_client.get(f"/campaigns/{draft.id}/{what}", headers=HX).status_code == 404
        assert viewer_client.get(f"/campaigns/999999/{what}").status_code == 404


# -- one campaign after it starts ------------------------------------------------------------
@pytest.fixture
def results(app):
    """A finished campaign: one delivered (and replied, its follow-up cancelled), one
    undelivered, one refused with a formula for a name."""
    campaign = finished(1, title="Results <night>", stats=None)
    contacts = ContactFactory.create_batch(3)
    contacts[1].phone = "+13135550000"
    contacts[2].name = '=HYPERLINK("http://evil")'
    OutboundMessageFactory(campaign=campaign, contact=contacts[0], delivered=True)
    OutboundMessageFactory(
        campaign=campaign,
        contact=contacts[1],
        undelivered=True,
        error_code="30006",
        error_message="Landline or unreachable carrier",
    )
    OutboundMessageFactory(campaign=campaign, contact=contacts[2], failed=True)
    OutboundMessageFactory(
        campaign=campaign,
        contact=contacts[0],
        step=Step.SECOND,
        status=MessageStatus.CANCELLED,
        cancel_reason="replied",
    )
    db.session.commit()
    return campaign


def test_a_started_campaign_shows_progress_funnel_recipients_and_the_csv_link(
    operator_client, results
):
    html = operator_client.get(f"/campaigns/{results.id}").get_data(as_text=True)
    assert "Results &lt;night&gt;" in html
    assert by_id(html, f"campaigns-done-{results.id}")
    assert by_id(html, f"campaigns-funnel-{results.id}")
    assert "30006" in by_id(html, f"campaigns-failures-{results.id}").text
    card = by_id(html, "campaigns-recipients-card")
    assert "+13135550000" in card and "Landline or unreachable carrier" in card
    assert f'href="/campaigns/{results.id}/outcomes.csv"' in card
    assert "What was sent, to whom" in by_id(html, f"campaigns-summary-{results.id}").text
    assert "Started" in by_id(html, f"campaigns-when-{results.id}").text
    assert 'hx-trigger="every 2s"' not in html  # finished: nothing polls
    assert f"campaigns-actions-{results.id}" not in html  # read-only once started
    assert f"campaigns-cancel-{results.id}" not in html  # not sending: nothing to cancel


def test_recipients_filter_by_status_and_search_by_phone_full_page_and_partial(
    viewer_client, results
):
    url = f"/campaigns/{results.id}/recipients"
    html = viewer_client.get(f"{url}?status=undelivered", headers=HX).get_data(as_text=True)
    assert "<html" not in html and html.count("<tr id=") == 1 and "+13135550000" in html
    problems = viewer_client.get(f"{url}?status=problems", headers=HX).get_data(as_text=True)
    assert problems.count("<tr id=") == 3  # undelivered, failed, and the cancelled follow-up
    found = viewer_client.get(f"{url}?q=(313) 555-0000", headers=HX).get_data(as_text=True)
    assert found.count("<tr id=") == 1
    weird = viewer_client.get(f"{url}?status=drop&after=1;--&q=%27", headers=HX)
    assert weird.status_code == 200
    full = viewer_client.get(f"{url}?status=undelivered")
    assert full.status_code == 302
    assert full.headers["Location"] == f"/campaigns/{results.id}?status=undelivered"
    page = viewer_client.get(f"/campaigns/{results.id}?status=undelivered").get_data(as_text=True)
    assert by_id(page, "campaigns-recipients").count("<tr id=") == 1


def test_recipients_page_on_with_a_cursor(viewer_client):
    campaign = finished(1, stats=None)
    for contact in ContactFactory.create_batch(53):
        OutboundMessageFactory(campaign=campaign, contact=contact, delivered=True)
    db.session.commit()
    url = f"/campaigns/{campaign.id}/recipients"
    first = viewer_client.get(url, headers=HX).get_data(as_text=True)
    assert first.count("<tr id=") == 50
    after = first.split('id="campaigns-recipients-next"')[0].rsplit("after=", 1)[1].split('"')[0]
    second = viewer_client.get(f"{url}?after={after}", headers=HX).get_data(as_text=True)
    assert second.count("<tr id=") == 3 and "campaigns-recipients-next" not in second


def test_outcomes_csv_says_who_did_not_get_it_and_why_formula_safe(viewer_client, results):
    response = viewer_client.get(f"/campaigns/{results.id}/outcomes.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert (
        f'filename="campaign-{results.id}-outcomes.csv"' in response.headers["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:7] == ["phone", "name", "step", "body", "status", "got it", "why not"]
    assert len(rows) == 5
    by_status = {r[4]: r for r in rows[1:]}
    assert by_status["delivered"][5] == "yes"
    assert by_status["delivered"][2:4] == ["first", "A one-off note from the newsroom"]
    assert by_status["undelivered"][0] == "+13135550000"
    assert by_status["undelivered"][6] == "Landline or unreachable carrier"
    assert by_status["failed"][1] == '\'=HYPERLINK("http://evil")'
    assert by_status["cancelled"][2:4] == ["follow-up", "Any thoughts on our note?"]
    assert by_status["cancelled"][6] == "cancelled: replied"
    only = viewer_client.get(f"/campaigns/{results.id}/outcomes.csv?status=problems")
    assert len(list(csv.reader(io.StringIO(only.get_data(as_text=True))))) == 4


def test_progress_polls_while_sending_and_stops_with_the_funnel_when_done(viewer_client):
    campaign = CampaignFactory(sending=True, title="Live one")
    contacts = ContactFactory.create_batch(2)
    queued = OutboundMessageFactory(campaign=campaign, contact=contacts[0])
    OutboundMessageFactory(campaign=campaign, contact=contacts[1], delivered=True)
    db.session.commit()
    url = f"/campaigns/{campaign.id}/progress"
    live = viewer_client.get(url, headers=HX)
    html = live.get_data(as_text=True)
    assert live.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith(f'<section id="campaigns-progress-{campaign.id}"')
    assert 'hx-trigger="every 2s"' in html
    assert f'id="campaigns-progress-bar-{campaign.id}" value="1" max="2"' in html
    compact = viewer_client.get(f"{url}?compact=1", headers=HX).get_data(as_text=True)
    assert "compact=1" in compact
    page = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in by_id(page, f"campaigns-progress-{campaign.id}")
    assert viewer_client.get(url).status_code == 302

    queued.status = MessageStatus.SENT
    queued.provider_sid = "SMx"
    db.session.commit()
    assert finish_sends() == 1
    done = viewer_client.get(url, headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' not in done
    assert f'id="campaigns-done-{campaign.id}"' in done
    assert f'id="campaigns-funnel-{campaign.id}"' in done


def test_a_campaign_started_by_the_tick_shows_what_its_start_wrote(viewer_client):
    ContactFactory.create_batch(3)
    campaign = scheduled("Started")
    campaign.run_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    assert start_campaign(campaign.id, zone=ZONE) is not None
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "3 recipients" in html
    when = by_id(html, f"campaigns-when-{campaign.id}").text
    started_at = campaign.started_at.astimezone(ZoneInfo(ZONE)).strftime("%b %-d, %Y %-I:%M %p")
    assert when.startswith(f"Started {started_at}")
    # The tick started it: not "on schedule" (a "Send now" has no schedule), and on time.
    assert "on schedule" not in when and "caught up" not in when
    assert "0 of 3 first messages done" in by_id(html, f"campaigns-progress-{campaign.id}").text


def test_a_campaign_the_scheduler_started_late_says_its_run_time(viewer_client):
    late = finished(1, stats=None)
    late.run_at = late.started_at - timedelta(minutes=7)
    db.session.commit()
    when = by_id(
        viewer_client.get(f"/campaigns/{late.id}").get_data(as_text=True),
        f"campaigns-when-{late.id}",
    )
    run_at = late.run_at.astimezone(ZoneInfo(ZONE)).strftime("%b %-d, %Y %-I:%M %p")
    assert f"its run time was {run_at}" in when.text and "the scheduler caught up" in when.text


# -- a scheduled campaign about to start -----------------------------------------------------
def test_a_campaign_about_to_start_counts_down_polls_and_reloads_once_it_started(viewer_client):
    ContactFactory.create_batch(2)
    campaign = scheduled("Send now <test>")
    campaign.run_at = utcnow() + timedelta(seconds=70)  # "Send now" a moment ago
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    line_id, url = f"campaigns-starting-{campaign.id}", f"/campaigns/{campaign.id}/starting"
    line = by_id(html, line_id)
    assert 'hx-trigger="every 5s"' in line and f'hx-get="{url}"' in line
    at = campaign.run_at.astimezone(ZoneInfo(ZONE)).strftime("%-I:%M %p")
    assert f"Starts at {at}" in line.text and "(in about a minute)" in line.text
    assert "Sends" in by_id(html, f"campaigns-when-{campaign.id}").text

    partial = viewer_client.get(url, headers=HX)
    body = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in body
    assert "HX-Refresh" not in partial.headers and "HX-Request" in partial.headers["Vary"]
    assert body.lstrip().startswith(f'<p id="{line_id}"')
    assert 'hx-trigger="every 5s"' in body
    full = viewer_client.get(url)
    assert full.status_code == 302 and full.headers["Location"] == f"/campaigns/{campaign.id}"

    # Its time passes: due, and still polling until the tick has started it.
    campaign.run_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    due = by_id(viewer_client.get(url, headers=HX).get_data(as_text=True), line_id)
    assert "Due at" in due.text and "within a minute" in due.text
    assert start_campaign(campaign.id, zone=ZONE) is not None
    started = viewer_client.get(url, headers=HX)
    assert started.status_code == 200 and started.headers["HX-Refresh"] == "true"
    assert started.get_data(as_text=True) == ""
    page = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert line_id not in page
    assert 'hx-trigger="every 2s"' in by_id(page, f"campaigns-progress-{campaign.id}")


def test_a_campaign_far_from_its_run_time_does_not_poll_and_a_changed_one_reloads(
    viewer_client, operator
):
    later = scheduled("Later")  # two hours ahead
    draft = CampaignFactory(run_at=utcnow() + timedelta(minutes=1))
    db.session.commit()
    for campaign in (later, draft):
        html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
        assert f"campaigns-starting-{campaign.id}" not in html and "every 5s" not in html
        # A page drawn while it was about to start (since unscheduled, or moved later) reloads.
        response = viewer_client.get(f"/campaigns/{campaign.id}/starting", headers=HX)
        assert response.headers["HX-Refresh"] == "true"
    gone = viewer_client.get("/campaigns/999999/starting", headers=HX)
    assert gone.headers["HX-Refresh"] == "true"


# -- what the results say ----------------------------------------------------------------------
def test_the_recipients_table_shows_each_step_and_the_text_each_person_was_sent(viewer_client):
    campaign = finished(1, stats=None)
    ana, ben = ContactFactory.create_batch(2)
    first = OutboundMessageFactory(
        campaign=campaign, contact=ana, delivered=True, body="Hi Ana, vote at Hall <A>."
    )
    OutboundMessageFactory(
        campaign=campaign, contact=ben, delivered=True, body="Hi Ben, vote at Hall B."
    )
    follow_up = OutboundMessageFactory(
        campaign=campaign, contact=ana, follow_up=True, body="Polls close at 8."
    )
    db.session.commit()
    url = f"/campaigns/{campaign.id}/recipients"
    html = viewer_client.get(url, headers=HX).get_data(as_text=True)
    head = html[html.index("<thead>") : html.index("</thead>")]
    assert "<th>Phone</th><th>Step</th><th>Text</th>" in head and "Message" not in head
    row = by_id(html, f"campaigns-recipient-{first.id}")
    assert '<span class="cell-label">Step</span>First</td>' in row
    # Clipped to two lines by the stylesheet; the whole text is the summary (a tap opens it)
    # and its title.
    assert (
        '<details class="sms-clip"><summary title="Hi Ana, vote at Hall &lt;A&gt;.">'
        "Hi Ana, vote at Hall &lt;A&gt;.</summary></details>"
    ) in row
    later = by_id(html, f"campaigns-recipient-{follow_up.id}")
    assert "Follow-up" in later.text and "Polls close at 8." in later.text
    assert "Hi Ben, vote at Hall B." in html
    page = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Hi Ana, vote at Hall &lt;A&gt;." in by_id(page, "campaigns-recipients")


def test_the_outcomes_csv_has_each_persons_text_formula_safe(viewer_client):
    campaign = finished(1, stats=None)
    ana, ben = ContactFactory.create_batch(2)
    OutboundMessageFactory(campaign=campaign, contact=ana, delivered=True, body="Hi Ana, Hall A.")
    OutboundMessageFactory(
        campaign=campaign, contact=ben, delivered=True, body='=HYPERLINK("http://evil")'
    )
    db.session.commit()
    response = viewer_client.get(f"/campaigns/{campaign.id}/outcomes.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["phone"]: (r["step"], r["body"]) for r in rows} == {
        ana.phone: ("first", "Hi Ana, Hall A."),
        ben.phone: ("first", '\'=HYPERLINK("http://evil")'),
    }


def started_from(values) -> Campaign:
    campaign = save_campaign(None, values, schedule=True, user=None, now=utcnow(), zone=ZONE)
    campaign.run_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    assert start_campaign(campaign.id, zone=ZONE) is not None
    return campaign


def test_a_started_list_campaign_lists_the_rows_that_got_no_text_and_links_the_upload_report(
    viewer_client,
):
    ana, ben = ContactFactory.create_batch(2)
    unsubscribed = ContactFactory(unsubscribed=True)
    excluded = ContactFactory(excluded=True)
    upload = list_upload([ana, unsubscribed, ben, excluded])
    upload.total_rows, upload.valid_rows, upload.invalid_rows, upload.duplicate_rows = 7, 4, 2, 1
    campaign = started_from(list_input(upload))
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "2 recipients" in html
    card = by_id(html, f"campaigns-not-sent-{campaign.id}")
    said = by_id(card, f"campaigns-not-sent-count-{campaign.id}").text
    assert said == "2 rows of the file got no text: excluded (1), unsubscribed (1)."
    row = by_id(card, "campaigns-not-sent-row-3")
    assert '<span class="cell-label">Row</span>3' in row and "unsubscribed" in row.text
    assert (
        f'href="/contacts/{unsubscribed.id}"' in row and f'data-phone="{unsubscribed.phone}"' in row
    )
    assert display_phone(unsubscribed.phone, "US") in row.text
    assert "excluded" in by_id(card, "campaigns-not-sent-row-5").text
    assert ana.phone not in card and ben.phone not in card
    never = by_id(card, f"campaigns-not-imported-{campaign.id}")
    assert (
        "3 other rows of the file were never imported (2 invalid rows, 1 duplicate): "
        "see the upload’s report."
    ) == never.text
    assert f'href="/uploads/{upload.id}"' in never


def test_a_personalized_campaign_says_which_field_a_row_had_no_value_for(viewer_client):
    people = ContactFactory.create_batch(2)
    upload = personalized_upload(
        [
            (people[0], {"First Name": "Ana", "Place": "Hall A"}),
            (people[1], {"First Name": "Ben", "Place": ""}),
        ]
    )
    campaign = started_from(personalized_input(upload))
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    card = by_id(html, f"campaigns-not-sent-{campaign.id}")
    assert "1 row of the file got no text: no value for {Place} (1)." in card.text
    assert "no value for {Place}" in by_id(card, "campaigns-not-sent-row-3").text
    assert f"campaigns-not-imported-{campaign.id}" not in card  # the file had no bad row


def test_a_list_campaign_that_texted_every_row_says_so_and_segments_ones_show_no_rows(
    viewer_client, results
):
    upload = list_upload(ContactFactory.create_batch(2))
    campaign = started_from(list_input(upload))
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    card = by_id(html, f"campaigns-not-sent-{campaign.id}")
    assert "Every row imported from the file got a text." in card.text
    html = viewer_client.get(f"/campaigns/{results.id}").get_data(as_text=True)
    assert "campaigns-not-sent" not in html


def test_a_cancelled_campaign_says_when_by_whom_and_what_was_not_sent(viewer_client):
    ann = UserFactory(name="Ann Editor")
    campaign = CampaignFactory(sending=True, title="Stopped")
    people = ContactFactory.create_batch(3)
    OutboundMessageFactory(campaign=campaign, contact=people[0], delivered=True)
    for person in people[1:]:
        OutboundMessageFactory(campaign=campaign, contact=person)
    db.session.commit()
    from app.sends.control import cancel_send

    assert cancel_send(campaign, user=ann) == 2
    db.session.commit()
    html = viewer_client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    notice = by_id(html, f"campaigns-cancelled-{campaign.id}").text
    assert "Cancelled" in notice and "by Ann Editor" in notice
    assert "2 waiting messages not sent" in notice
    assert "2" in by_id(html, f"campaigns-cancelled-by-send-{campaign.id}").text
    assert "send cancelled" in by_id(html, f"campaigns-messages-{campaign.id}").text
    assert "cancelled" in by_id(html, f"campaigns-done-{campaign.id}").text


# -- the overview ----------------------------------------------------------------------------
def test_the_overview_shows_the_next_campaign_with_its_time_and_estimate(viewer_client):
    ContactFactory.create_batch(2)
    later = scheduled("Later one")
    later.run_at = utcnow() + timedelta(days=3)
    sooner = scheduled("Sooner <one>")
    CampaignFactory(title="A draft", run_at=utcnow() + timedelta(hours=1))
    db.session.commit()
    html = viewer_client.get("/").get_data(as_text=True)
    card = by_id(html, "dashboard-next-campaign")
    link = by_id(card, "dashboard-next-campaign-link")
    assert f'href="/campaigns/{sooner.id}"' in link and "Sooner &lt;one&gt;" in link
    assert by_id(card, "dashboard-next-campaign-estimate").text == "2 people"
    run_at = sooner.run_at.astimezone(ZoneInfo(ZONE))
    assert run_at.strftime("%-I:%M %p") in by_id(card, "dashboard-next-campaign-when").text


def test_the_overview_without_a_scheduled_campaign_says_so(client, viewer, operator):
    from tests.conftest import sign_in

    CampaignFactory(title="Only a draft")
    db.session.commit()
    sign_in(client, viewer)
    card = by_id(client.get("/").get_data(as_text=True), "dashboard-next-campaign")
    assert "No campaign scheduled." in card.text
    assert "dashboard-next-campaign-new" not in card
    client.post("/auth/logout")
    sign_in(client, operator)
    card = by_id(client.get("/").get_data(as_text=True), "dashboard-next-campaign")
    assert 'href="/campaigns/new"' in by_id(card, "dashboard-next-campaign-new")


def test_the_index_lists_each_kind_in_words(viewer_client):
    upload = list_upload(ContactFactory.create_batch(1))
    campaign = save_campaign(
        None,
        list_input(upload, title="From a list"),
        schedule=False,
        user=None,
        now=utcnow(),
        zone=ZONE,
    )
    db.session.commit()
    assert campaign.target_kind is CampaignTarget.UPLOADED_LIST
    row = by_id(
        viewer_client.get("/campaigns/").get_data(as_text=True), f"campaigns-upcoming-{campaign.id}"
    )
    assert "Uploaded list" in row.text and upload.filename in row.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 1
