"""Cancelling a sending campaign or broadcast: the confirmation says what it stops, the cancel
turns every waiting message into `cancelled` ("send cancelled") and the figures show them, no
follow-up comes to exist afterwards, and a real worker sending at the time sends nothing that
was not already in flight. Not sending is a 409; viewers get a 403."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import create_app
from app.campaigns.services import start_campaign
from app.config import parse_quiet_hours
from app.extensions import db
from app.jobs.sending import enqueue_sending
from app.models import (
    ACCEPTED_STATUSES,
    AuditLog,
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    Contact,
    MessageStatus,
    OutboundMessage,
    Role,
    Segment,
    Step,
    utcnow,
)
from app.sending.cancel import SEND_CANCELLED_REASON
from app.sending.outbound import after_first_accepted
from app.sends.stats import compute_stats, refresh_stats
from bench.common import kill_tree
from tests.factories import (
    PASSWORD,
    BroadcastFactory,
    CampaignFactory,
    ContactFactory,
    OutboundMessageFactory,
    UserFactory,
)
from tests.support import (
    HX,
    by_id,
    make_test_config,
    migrated_scratch_database,
    start_worker_py,
    test_env,
)

ZONE = "America/Detroit"


def messages(**where) -> list[OutboundMessage]:
    db.session.expire_all()
    query = sa.select(OutboundMessage).order_by(OutboundMessage.id)
    for key, value in where.items():
        query = query.where(getattr(OutboundMessage, key) == value)
    return list(db.session.scalars(query))


@pytest.fixture
def sending_campaign(app) -> Campaign:
    """A campaign half way: one delivered (its follow-up scheduled), one sent, three queued,
    one retrying, one claimed by a worker right now."""
    campaign = CampaignFactory(sending=True, title="Road closures")
    people = ContactFactory.create_batch(7)
    OutboundMessageFactory(campaign=campaign, contact=people[0], delivered=True)
    OutboundMessageFactory(campaign=campaign, contact=people[0], follow_up=True)
    OutboundMessageFactory(campaign=campaign, contact=people[1], sent=True)
    for person in people[2:5]:
        OutboundMessageFactory(campaign=campaign, contact=person)
    OutboundMessageFactory(
        campaign=campaign,
        contact=people[5],
        status=MessageStatus.RETRYING,
        next_attempt_at=utcnow() + timedelta(minutes=1),
    )
    OutboundMessageFactory(
        campaign=campaign, contact=people[6], status=MessageStatus.SENDING, claimed_at=utcnow()
    )
    db.session.commit()
    return campaign


# -- the confirmation --------------------------------------------------------------------------
def test_the_confirmation_says_how_many_waiting_messages_it_cancels(
    operator_client, sending_campaign
):
    url = f"/campaigns/{sending_campaign.id}/cancel"
    page = operator_client.get(f"/campaigns/{sending_campaign.id}").get_data(as_text=True)
    bar = by_id(page, f"campaigns-cancel-{sending_campaign.id}")
    assert f'hx-get="{url}"' in bar and f'href="{url}"' in bar
    partial = operator_client.get(url, headers=HX)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in html
    waiting = by_id(html, f"campaigns-cancel-waiting-{sending_campaign.id}").text
    assert "5 waiting messages" in waiting  # 3 queued, 1 retrying, 1 follow-up
    assert (
        "1 message already handed to a worker"
        in by_id(html, f"campaigns-cancel-in-flight-{sending_campaign.id}").text
    )
    assert f'hx-post="{url}"' in html and "Keep sending" in html
    # Without htmx: the campaign's page with the confirmation open.
    full = operator_client.get(url).get_data(as_text=True)
    panel = by_id(full, f"campaigns-cancel-panel-{sending_campaign.id}")
    assert "5 waiting messages" in panel.text
    # Looking changes nothing.
    assert {m.status for m in messages(campaign_id=sending_campaign.id)} >= {MessageStatus.QUEUED}


def test_viewers_see_no_cancel_button_and_get_403(viewer_client, sending_campaign):
    url = f"/campaigns/{sending_campaign.id}/cancel"
    page = viewer_client.get(f"/campaigns/{sending_campaign.id}").get_data(as_text=True)
    assert f"campaigns-cancel-{sending_campaign.id}" not in page
    assert viewer_client.get(url, headers=HX).status_code == 403
    assert viewer_client.post(url).status_code == 403
    db.session.expire_all()
    assert db.session.get(Campaign, sending_campaign.id).status == CampaignStatus.SENDING


# -- the cancel --------------------------------------------------------------------------------
def test_cancel_while_sending_cancels_every_waiting_message_and_the_figures_show_them(
    operator_client, operator, sending_campaign
):
    response = operator_client.post(f"/campaigns/{sending_campaign.id}/cancel")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/campaigns/{sending_campaign.id}"
    rows = messages(campaign_id=sending_campaign.id)
    by_status: dict[str, list[OutboundMessage]] = {}
    for m in rows:
        by_status.setdefault(m.status, []).append(m)
    assert len(by_status["cancelled"]) == 5
    assert {m.cancel_reason for m in by_status["cancelled"]} == {SEND_CANCELLED_REASON}
    # What the provider has, or a worker holds, keeps its state.
    assert len(by_status["delivered"]) == len(by_status["sent"]) == len(by_status["sending"]) == 1
    campaign = db.session.get(Campaign, sending_campaign.id)
    assert campaign.status == CampaignStatus.CANCELLED
    assert campaign.cancelled_by_id == operator.id and campaign.cancelled_at is not None
    assert campaign.stats["cancelled_by_send"] == 5
    assert compute_stats(campaign)["cancelled_by_send"] == 5
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "campaign.cancel"))
    assert audit is not None and "5 waiting messages cancelled" in audit.summary

    page = operator_client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        "Road closures cancelled: 5 waiting messages will not be sent." in by_id(page, "flash").text
    )
    notice = by_id(page, f"campaigns-cancelled-{campaign.id}").text
    assert "by " + (operator.name or operator.email) in notice
    assert "5 waiting messages not sent" in notice
    assert "5" in by_id(page, f"campaigns-cancelled-by-send-{campaign.id}").text
    assert f"campaigns-cancel-{campaign.id}" not in page  # nothing left to cancel
    assert 'hx-trigger="every 2s"' not in page

    # The first messages still with a worker or the provider get no follow-up, ever.
    in_flight = by_status["sending"][0]
    in_flight.status = MessageStatus.SENT
    in_flight.provider_sid = "SMlate"
    db.session.commit()
    accepted = [m.id for m in rows if m.step == Step.FIRST]
    assert after_first_accepted(accepted, utcnow()) == []
    db.session.commit()
    assert len(messages(campaign_id=campaign.id, step=Step.SECOND)) == 1  # the cancelled one


def test_cancel_with_htmx_answers_with_hx_redirect(operator_client, sending_campaign):
    response = operator_client.post(f"/campaigns/{sending_campaign.id}/cancel", headers=HX)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/campaigns/{sending_campaign.id}"


@pytest.mark.parametrize("status", [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, "sent"])
def test_a_campaign_that_is_not_sending_cannot_be_cancelled(operator_client, status):
    fields = {"status": status}
    if status == "sent":
        fields.update(started_at=utcnow(), finished_at=utcnow())
    campaign = CampaignFactory(**fields)
    db.session.commit()
    url = f"/campaigns/{campaign.id}/cancel"
    for response in (operator_client.post(url), operator_client.get(url, headers=HX)):
        assert response.status_code == 409
        assert "is not sending, so there is nothing to cancel" in response.get_data(as_text=True)
    htmx = operator_client.post(url, headers=HX)
    assert htmx.status_code == 409 and htmx.headers["HX-Retarget"] == "#flash"
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == status
    assert operator_client.post("/campaigns/999999/cancel").status_code == 404


def test_a_cancelled_campaign_cannot_be_cancelled_twice(operator_client, sending_campaign):
    assert operator_client.post(f"/campaigns/{sending_campaign.id}/cancel").status_code == 303
    again = operator_client.post(f"/campaigns/{sending_campaign.id}/cancel")
    assert again.status_code == 409
    audits = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "campaign.cancel"))
    assert len(list(audits)) == 1


# -- a sending broadcast, the same way -----------------------------------------------------------
@pytest.fixture
def sending_broadcast(app) -> Broadcast:
    broadcast = BroadcastFactory(sending=True, recipient_count=4)
    people = ContactFactory.create_batch(4)
    OutboundMessageFactory(broadcast=broadcast, contact=people[0], delivered=True)
    OutboundMessageFactory(broadcast=broadcast, contact=people[0], follow_up=True)
    for person in people[1:]:
        OutboundMessageFactory(broadcast=broadcast, contact=person)
    db.session.commit()
    return broadcast


def test_a_sending_broadcast_is_cancelled_the_same_way(
    operator_client, operator, sending_broadcast
):
    url = f"/broadcasts/{sending_broadcast.id}/cancel"
    page = operator_client.get(f"/broadcasts/{sending_broadcast.id}").get_data(as_text=True)
    assert f'hx-get="{url}"' in by_id(page, f"broadcasts-cancel-{sending_broadcast.id}")
    confirm = operator_client.get(url, headers=HX).get_data(as_text=True)
    assert (
        "4 waiting messages"
        in by_id(confirm, f"broadcasts-cancel-waiting-{sending_broadcast.id}").text
    )
    full = operator_client.get(url).get_data(as_text=True)
    assert (
        "4 waiting messages" in by_id(full, f"broadcasts-cancel-panel-{sending_broadcast.id}").text
    )

    response = operator_client.post(url, headers=HX)
    assert response.headers["HX-Redirect"] == f"/broadcasts/{sending_broadcast.id}"
    rows = messages(broadcast_id=sending_broadcast.id)
    cancelled = [m for m in rows if m.status == MessageStatus.CANCELLED]
    assert len(cancelled) == 4 and {m.cancel_reason for m in cancelled} == {SEND_CANCELLED_REASON}
    broadcast = db.session.get(Broadcast, sending_broadcast.id)
    assert broadcast.status == BroadcastStatus.CANCELLED
    assert broadcast.cancelled_by_id == operator.id
    page = operator_client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    assert "4 waiting messages not sent" in by_id(page, f"broadcasts-cancelled-{broadcast.id}").text
    assert "4" in by_id(page, f"broadcasts-cancelled-by-send-{broadcast.id}").text
    assert f"broadcasts-cancel-{broadcast.id}" not in page
    assert operator_client.post(url).status_code == 409


def test_viewers_cannot_cancel_a_broadcast_and_a_finished_one_is_409(
    client, viewer, operator, sending_broadcast
):
    from tests.conftest import sign_in

    url = f"/broadcasts/{sending_broadcast.id}/cancel"
    sign_in(client, viewer)
    page = client.get(f"/broadcasts/{sending_broadcast.id}").get_data(as_text=True)
    assert f"broadcasts-cancel-{sending_broadcast.id}" not in page
    assert client.post(url).status_code == 403
    assert client.get(url, headers=HX).status_code == 403
    client.post("/auth/logout")
    sign_in(client, operator)
    done = BroadcastFactory(status=BroadcastStatus.SENT, started_at=utcnow())
    db.session.commit()
    response = client.post(f"/broadcasts/{done.id}/cancel")
    assert response.status_code == 409
    assert "is not sending" in response.get_data(as_text=True)


# -- with a real worker sending ----------------------------------------------------------------
PEOPLE = 300
RATE = 30  # messages a second: a send of 10 s, cancelled after about 1.5 s
CLAIM = 15


@pytest.fixture(scope="module")
def cancel_db() -> Iterator[str]:
    with migrated_scratch_database("cancel") as url:
        yield url


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_cancel_while_a_real_worker_sends_sends_nothing_that_was_not_in_flight(cancel_db):
    live = create_app(
        make_test_config(
            database_url=cancel_db,
            WTF_CSRF_ENABLED=False,
            QUIET_HOURS=parse_quiet_hours("off"),
            SEND_RATE_MPS=float(RATE),
            SEND_CLAIM_MAX=CLAIM,
        )
    )
    with live.app_context():
        operator = UserFactory(role=Role.OPERATOR, email="desk@example.org")
        everyone = Segment(name="Everyone", rule={"all": []})
        db.session.add_all([everyone, *(Contact(phone=f"+1313556{i:04d}") for i in range(PEOPLE))])
        db.session.flush()
        campaign = Campaign(
            title="Polls close at 8",
            first_message="Polls close at 8 tonight.",
            second_message="Did you get to vote?",
            delay_seconds=600,
            target_kind=CampaignTarget.SEGMENTS,
            targeting={
                "include": [[{"type": "segment", "segment_id": everyone.id}]],
                "exclude": [],
            },
            status=CampaignStatus.SCHEDULED,
            run_at=utcnow(),
        )
        db.session.add(campaign)
        db.session.commit()
        campaign_id, operator_email = campaign.id, operator.email
        assert start_campaign(campaign_id, zone=ZONE).actual_recipients == PEOPLE
        enqueue_sending(live)

    def sent() -> int:
        with live.app_context():
            count = db.session.scalar(
                sa.select(sa.func.count()).where(
                    OutboundMessage.campaign_id == campaign_id, OutboundMessage.sent_at.is_not(None)
                )
            )
            db.session.remove()
            return count or 0

    env = test_env(
        DATABASE_URL=cancel_db,
        QUIET_HOURS="off",
        SEND_RATE_MPS=str(RATE),
        SEND_CLAIM_MAX=str(CLAIM),
        SEND_PARALLEL_JOBS="2",
    )
    worker = start_worker_py(["worker", "--burst"], env)
    try:
        _wait_for(lambda: sent() >= 45, 60, "the worker to send the first messages")
        client = live.test_client()
        login = client.post("/auth/login", data={"email": operator_email, "password": PASSWORD})
        assert login.status_code == 302
        cancelled_at = utcnow()
        response = client.post(f"/campaigns/{campaign_id}/cancel", headers=HX)
        assert response.status_code == 204, response.get_data(as_text=True)
        with live.app_context():
            # Right after the cancel's commit: nothing is queued any more; what is not
            # cancelled was already with a worker or the provider.
            at_cancel = {m.id: (m.status, m.step) for m in messages(campaign_id=campaign_id)}
            db.session.remove()
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            kill_tree(worker)

    assert MessageStatus.QUEUED not in {status for status, _ in at_cancel.values()}
    not_cancelled = {i for i, (status, _) in at_cancel.items() if status != MessageStatus.CANCELLED}
    with live.app_context():
        rows = messages(campaign_id=campaign_id)
        firsts = [m for m in rows if m.step == Step.FIRST]
        accepted = [m for m in firsts if m.status in ACCEPTED_STATUSES]
        cancelled = [m for m in rows if m.status == MessageStatus.CANCELLED]
        assert len(firsts) == PEOPLE
        # Every message either went out or was cancelled with the send: none lost, none left.
        assert len(accepted) + len([m for m in cancelled if m.step == Step.FIRST]) == PEOPLE
        assert {m.cancel_reason for m in cancelled} == {SEND_CANCELLED_REASON}
        # Nothing went out that was not already in flight when the cancel committed.
        assert {m.id for m in accepted} <= not_cancelled
        late = [m for m in accepted if m.sent_at > cancelled_at]
        claimed = {i for i, (status, _) in at_cancel.items() if status == MessageStatus.SENDING}
        assert {m.id for m in late} <= claimed and len(claimed) <= 2 * CLAIM
        assert 45 <= len(accepted) < PEOPLE / 2, len(accepted)
        # Follow-ups: those made before the cancel were cancelled with it; none made after.
        follow_ups = [m for m in rows if m.step == Step.SECOND]
        assert all(m.status == MessageStatus.CANCELLED for m in follow_ups)
        assert {i for i, (_, step) in at_cancel.items() if step == Step.SECOND} == {
            m.id for m in follow_ups
        }
        assert after_first_accepted([m.id for m in accepted], utcnow()) == []
        db.session.rollback()
        campaign = db.session.get(Campaign, campaign_id)
        assert campaign.status == CampaignStatus.CANCELLED
        stats = refresh_stats(campaign)
        assert stats["cancelled_by_send"] == len(cancelled)
        assert stats["first_sent"] == len(accepted) and stats["pending"] == 0
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
