""" "Check statuses now" on a broadcast's and a campaign's page: who may, what it queues, the
section polling while the job runs and its result after, and why it cannot when it cannot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue

from app.extensions import db
from app.jobs import QUEUE_MAINTENANCE
from app.jobs.maintenance import (
    reconcile_statuses_job,
    send_reconcile_job_id,
    send_run_name,
)
from app.models import JobOutcome, JobRun, MessageStatus, OutboundMessage, utcnow
from tests.conftest import sign_in
from tests.factories import BroadcastFactory, CampaignFactory, OutboundMessageFactory
from tests.fakes.twilio import FakeTwilio
from tests.support import HX, by_id

FROM = "+13135559999"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=2) as server:
        yield server


@pytest.fixture
def twilio_app(make_app, fake):
    return make_app(
        **fake.app_settings(
            TWILIO_FROM_NUMBER=FROM, TWILIO_READS_PER_SECOND=1000.0, QUIET_HOURS=None
        )
    )


def client_for(app, user):
    client = app.test_client()
    sign_in(client, user)
    return client


def maintenance_jobs(app) -> list:
    with app.app_context():
        from app.extensions import get_redis

        return Queue(QUEUE_MAINTENANCE, connection=get_redis(app)).get_jobs()


def held(fake, broadcast=None, campaign=None, status="delivered"):
    fields = {"campaign": campaign} if campaign else {"broadcast": broadcast}
    message = OutboundMessageFactory(sent=True, **fields)
    message.provider_sid = fake.add_message(message.contact.phone, message.body, status)
    db.session.commit()
    return message


def test_an_operator_checks_a_broadcast_and_sees_it_run_then_its_result(twilio_app, fake, operator):
    broadcast = BroadcastFactory(sending=True)
    mine = held(fake, broadcast)
    other = held(fake, BroadcastFactory(sending=True))
    client = client_for(twilio_app, operator)

    page = client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    section = by_id(page, f"broadcasts-statuses-{broadcast.id}")
    assert "Not checked on demand yet" in section.text
    assert by_id(page, f"broadcasts-statuses-check-{broadcast.id}").text == "Check statuses now"

    response = client.post(f"/broadcasts/{broadcast.id}/statuses", headers=HX)
    assert response.status_code == 202
    html = response.get_data(as_text=True)
    assert "Checking the statuses" in html and "queued" in html
    assert 'hx-trigger="every 2s"' in html and "Check statuses now" not in html
    # Queued once, for this broadcast only; a second click queues nothing more.
    assert client.post(f"/broadcasts/{broadcast.id}/statuses", headers=HX).status_code == 202
    jobs = maintenance_jobs(twilio_app)
    assert [job.id for job in jobs] == [send_reconcile_job_id(broadcast)]
    assert jobs[0].kwargs == {"broadcast_id": broadcast.id}
    assert fake.stats()["fetches"] == 0  # the provider is only asked by the job

    with twilio_app.app_context():  # what the worker does with the job
        jobs[0].delete()
        counts = reconcile_statuses_job(**jobs[0].kwargs)
    assert counts["checked"] == 1 and counts["updated"] == 1

    partial = client.get(f"/broadcasts/{broadcast.id}/statuses", headers=HX)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "every 2s" not in html
    assert "Last checked" in html and "1 message checked by SID: 1 updated" in html
    assert "Check statuses now" in html
    db.session.expire_all()
    assert db.session.get(OutboundMessage, mine.id).status == MessageStatus.DELIVERED
    assert db.session.get(OutboundMessage, other.id).status == MessageStatus.SENT


def test_a_running_check_shows_its_progress_and_keeps_polling(twilio_app, fake, operator):
    broadcast = BroadcastFactory(sending=True)
    db.session.add(
        JobRun(
            name=send_run_name(broadcast),
            outcome=JobOutcome.RUNNING,
            started_at=utcnow(),
            counts={"checked": 500, "to_check": 2000, "updated": 120},
        )
    )
    db.session.commit()
    client = client_for(twilio_app, operator)
    client.post(f"/broadcasts/{broadcast.id}/statuses", headers=HX)  # its job is queued
    html = client.get(f"/broadcasts/{broadcast.id}/statuses", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in html
    bar = by_id(html, f"broadcasts-statuses-bar-{broadcast.id}")
    assert 'value="500"' in bar and 'max="2000"' in bar
    assert "500 of 2,000 messages checked by SID" in html and "120 messages updated" in html


def test_a_viewer_sees_no_button_and_may_not_check(twilio_app, fake, viewer):
    broadcast = BroadcastFactory(sending=True)
    held(fake, broadcast)
    client = client_for(twilio_app, viewer)
    page = client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    assert f"broadcasts-statuses-{broadcast.id}" in page and "Check statuses now" not in page
    assert client.post(f"/broadcasts/{broadcast.id}/statuses", headers=HX).status_code == 403
    assert maintenance_jobs(twilio_app) == []


def test_an_admin_checks_a_campaign_with_a_plain_form(twilio_app, fake, admin):
    campaign = CampaignFactory(sending=True)
    held(fake, campaign=campaign)
    client = client_for(twilio_app, admin)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert by_id(page, f"campaigns-statuses-check-{campaign.id}").text == "Check statuses now"
    response = client.post(f"/campaigns/{campaign.id}/statuses")
    assert response.status_code == 303 and response.location.endswith(f"/campaigns/{campaign.id}")
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Checking the statuses" in page  # the flash
    assert [job.kwargs for job in maintenance_jobs(twilio_app)] == [{"campaign_id": campaign.id}]


def test_with_redis_down_the_page_says_nothing_was_queued(twilio_app, operator):
    broadcast = BroadcastFactory(sending=True)
    db.session.commit()
    client = client_for(twilio_app, operator)
    twilio_app.extensions["redis"] = Redis(port=1, socket_connect_timeout=0.2)
    twilio_app.extensions["rq_queues"] = {}
    response = client.post(f"/broadcasts/{broadcast.id}/statuses", headers=HX)
    assert response.status_code == 503
    assert "The job queue does not answer" in response.get_data(as_text=True)
    page = client.get(f"/broadcasts/{broadcast.id}")
    assert page.status_code == 200
    assert "The job queue does not answer" in page.get_data(as_text=True)


def test_with_the_simulator_the_page_says_why_it_cannot_check(make_app, operator):
    app = make_app(TRANSPORT="simulator")
    broadcast = BroadcastFactory(sending=True)
    db.session.commit()
    client = client_for(app, operator)
    page = client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    note = by_id(page, f"broadcasts-statuses-unavailable-{broadcast.id}")
    assert "simulator transport sends nothing to a provider" in note.text
    assert "Check statuses now" not in page
    response = client.post(f"/broadcasts/{broadcast.id}/statuses", headers=HX)
    assert response.status_code == 409 and "cannot be checked" in response.get_data(as_text=True)
    assert maintenance_jobs(app) == []


def test_missive_without_twilio_credentials_says_what_is_missing(make_app, operator):
    app = make_app(TRANSPORT="missive", MISSIVE_API_TOKEN="t", MISSIVE_FROM_NUMBER=FROM)
    campaign = CampaignFactory(sending=True)
    db.session.commit()
    page = client_for(app, operator).get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    note = by_id(page, f"campaigns-statuses-unavailable-{campaign.id}")
    assert "TWILIO_ACCOUNT_SID" in note.text and "Check statuses now" not in page


def test_a_failed_or_partly_read_check_says_what_went_wrong(twilio_app, fake, operator):
    broadcast, campaign = BroadcastFactory(sending=True), CampaignFactory(sending=True)
    now = utcnow()
    db.session.add_all(
        [
            JobRun(
                name=send_run_name(broadcast),
                outcome=JobOutcome.FAILED,
                started_at=now,
                finished_at=now,
                error=(
                    "Traceback (most recent call last):\n"
                    "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) server closed "
                    "the connection\n[SQL: SELECT 1]\n"
                    "(Background on this error at: https://sqlalche.me/e/20/e3q8)\n"
                ),
            ),
            JobRun(
                name=send_run_name(campaign),
                outcome=JobOutcome.SUCCESS,
                started_at=now,
                finished_at=now,
                counts={
                    "checked": 0,
                    "listed": 1000,
                    "matched": 3,
                    "errors": 1,
                    "list_error": "HTTP 500 from Twilio",
                },
            ),
        ]
    )
    db.session.commit()
    client = client_for(twilio_app, operator)
    page = client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    result = by_id(page, f"broadcasts-statuses-result-{broadcast.id}").text
    assert "failed: sqlalchemy.exc.OperationalError: (psycopg.OperationalError) server closed" in (
        " ".join(result.split())
    )
    assert "Background on this error" not in result
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    counts = " ".join(by_id(page, f"campaigns-statuses-counts-{campaign.id}").text.split())
    assert "3 messages matched" in counts
    assert "Twilio's list could not be read (HTTP 500 from Twilio)" in counts
