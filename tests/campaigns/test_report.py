"""What a campaign's page reports besides its figures (app/campaigns/report.py): the countdown
of a scheduled campaign about to start, and the rows of a file that got no text, with why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.campaigns.report import StartCountdown, rows_not_sent, start_countdown
from app.campaigns.services import save_campaign, start_campaign
from app.extensions import db
from app.models import Campaign, CampaignStatus, utcnow
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
from tests.factories import CampaignFactory, ContactFactory


def started(values) -> Campaign:
    """A campaign saved from `values`, due, and started as the tick starts it."""
    campaign = save_campaign(None, values, schedule=True, user=None, now=utcnow(), zone=ZONE)
    campaign.run_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    assert start_campaign(campaign.id, zone=ZONE) is not None
    return campaign


# -- the countdown ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (20, "in less than a minute"),
        (60, "in about a minute"),
        (89, "in about a minute"),
        (150, "in about 2 minutes"),
        (14 * 60, "in about 14 minutes"),
    ],
)
def test_the_countdown_says_how_soon_in_words(seconds, words):
    countdown = StartCountdown(utcnow(), seconds)
    assert countdown.words == words and not countdown.due


def test_only_a_scheduled_campaign_within_fifteen_minutes_or_past_its_time_counts_down():
    now = utcnow()
    soon = CampaignFactory(status=CampaignStatus.SCHEDULED, run_at=now + timedelta(minutes=1))
    edge = CampaignFactory(status=CampaignStatus.SCHEDULED, run_at=now + timedelta(minutes=15))
    later = CampaignFactory(status=CampaignStatus.SCHEDULED, run_at=now + timedelta(minutes=16))
    due = CampaignFactory(status=CampaignStatus.SCHEDULED, run_at=now - timedelta(seconds=30))
    draft = CampaignFactory(run_at=now + timedelta(minutes=1))
    sending = CampaignFactory(sending=True, run_at=now - timedelta(minutes=1))
    assert start_countdown(soon, now=now) == StartCountdown(soon.run_at, 60)
    assert start_countdown(edge, now=now) is not None
    assert start_countdown(due, now=now).due
    for campaign in (later, draft, sending):
        assert start_countdown(campaign, now=now) is None


# -- the rows that got no text ---------------------------------------------------------------
def test_a_list_campaign_reports_its_unsubscribed_and_excluded_rows_in_file_order():
    ana, ben = ContactFactory.create_batch(2)
    unsubscribed = ContactFactory(unsubscribed=True)
    excluded = ContactFactory(excluded=True)
    upload = list_upload([ana, unsubscribed, ben, excluded])  # rows 2 to 5
    campaign = started(list_input(upload))
    assert campaign.actual_recipients == 2

    report = rows_not_sent(campaign)
    assert report.count == 2
    assert [(r.row, r.phone, r.reason) for r in report.rows] == [
        (3, unsubscribed.phone, "unsubscribed"),
        (5, excluded.phone, "excluded"),
    ]
    assert report.rows[0].contact_id == unsubscribed.id
    assert report.reasons == [("excluded", 1), ("unsubscribed", 1)]


def test_a_template_campaign_names_the_first_field_a_row_has_no_value_for():
    people = ContactFactory.create_batch(5)
    people[4].unsubscribed = True
    upload = personalized_upload(
        [
            (people[0], {"First Name": "Ana", "Place": "Hall A"}),
            (people[1], {"First Name": "Ben", "Place": " "}),
            (people[2], {"First Name": "", "Place": ""}),
            (people[3], {"Place": "Hall D"}),
            (people[4], {"First Name": "Eve", "Place": ""}),  # unsubscribed says it first
        ]
    )
    campaign = started(personalized_input(upload))
    assert campaign.actual_recipients == 1

    report = rows_not_sent(campaign)
    assert [(r.row, r.reason) for r in report.rows] == [
        (3, "no value for {Place}"),
        (4, "no value for {First Name}"),
        (5, "no value for {First Name}"),
        (6, "unsubscribed"),
    ]
    assert report.reasons == [
        ("no value for {First Name}", 2),
        ("no value for {Place}", 1),
        ("unsubscribed", 1),
    ]
    first_two = rows_not_sent(campaign, limit=2)
    assert first_two.count == 4 and [r.row for r in first_two.rows] == [3, 4]


def test_a_message_column_campaign_reports_rows_with_an_empty_message():
    ana, ben = ContactFactory.create_batch(2)
    upload = personalized_upload([(ana, {"message": "Hi Ana"}), (ben, {"message": ""})])
    campaign = started(personalized_input(upload, message_source="column", first_message=""))
    report = rows_not_sent(campaign)
    assert [(r.phone, r.reason) for r in report.rows] == [
        (ben.phone, "no text in the “message” column")
    ]


def test_every_row_texted_reports_none_and_a_segments_campaign_has_no_file_rows():
    upload = list_upload(ContactFactory.create_batch(2))
    report = rows_not_sent(started(list_input(upload)))
    assert (report.count, report.rows, report.reasons) == (0, [], [])
    assert rows_not_sent(started(segments_input([[seg(everyone())]]))) is None


def test_a_row_that_lost_its_first_message_is_still_told_apart():
    """Eligible with every value and yet no first message: eligibility changed around the
    start (say a person unsubscribed, then subscribed again); the reason says so."""
    ana, ben = ContactFactory.create_batch(2)
    ben.unsubscribed = True
    upload = list_upload([ana, ben])
    campaign = started(list_input(upload))
    ben.unsubscribed = False
    db.session.commit()
    report = rows_not_sent(campaign)
    assert [(r.phone, r.reason) for r in report.rows] == [
        (ben.phone, "not eligible when it started")
    ]


def test_a_row_whose_text_would_be_too_long_for_one_message_says_so():
    ana, ben = ContactFactory.create_batch(2)
    upload = personalized_upload(
        [
            (ana, {"First Name": "Ana", "Place": "Hall A"}),
            (ben, {"First Name": "Ben", "Place": "x" * 1600}),
        ]
    )
    campaign = started(personalized_input(upload))
    assert campaign.actual_recipients == 1
    report = rows_not_sent(campaign)
    assert [(r.phone, r.reason) for r in report.rows] == [
        (ben.phone, "text longer than 1,600 characters")
    ]
