"""Just before a campaign's batch goes out: who became unsubscribed, excluded or now matches the
exclude rule is skipped with the reason, a cancelled send's messages are cancelled, labels go to
the transport; follow-ups after acceptance; a cancel while a real worker sends; the figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from app.campaigns.services import save_campaign, start_campaign
from app.extensions import db
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTarget,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.cancel import SEND_CANCELLED_REASON
from app.sending.engine import (
    EXCLUDE_RULE_REASON,
    BatchSummary,
    claim_batch,
    screen_claimed,
    send_batch,
)
from app.sending.outbound import after_first_accepted
from app.sending.recovery import release_due
from app.sends.control import cancel_send
from app.sends.stats import compute_stats
from tests.campaigns.builders import (
    ZONE,
    everyone,
    lab,
    personalized_input,
    personalized_upload,
    seg,
    segments_input,
)
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    InboundMessageFactory,
    MissiveLabelFactory,
    OutboundMessageFactory,
    SegmentFactory,
    UserFactory,
    label_contact,
)

ENGINE = {"QUIET_HOURS": None, "SEND_RATE_MPS": 1000.0}


@pytest.fixture
def sim_app(make_app) -> Iterator[Flask]:
    """The simulator transport, quiet hours off, a fast pace, on the test's connection."""
    app = make_app(**ENGINE)
    with app.app_context():
        yield app


def started(values) -> Campaign:
    campaign = save_campaign(None, values, schedule=True, user=None, now=utcnow(), zone=ZONE)
    db.session.commit()
    assert start_campaign(campaign.id, now=utcnow(), zone=ZONE) is not None
    return campaign


def outcome(campaign: Campaign, step: Step = Step.FIRST) -> dict[int, tuple[str, str | None]]:
    """contact id → (status, reason) of the campaign's messages of one step."""
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(
            OutboundMessage.contact_id, OutboundMessage.status, OutboundMessage.cancel_reason
        ).where(OutboundMessage.campaign_id == campaign.id, OutboundMessage.step == step)
    )
    return {cid: (str(status), reason) for cid, status, reason in rows}


def test_people_who_became_ineligible_or_excluded_after_the_start_are_skipped_with_the_reason(
    sim_app,
):
    ava, ben, cleo, dev = ContactFactory.create_batch(4)
    stop_list = MissiveLabelFactory(name="Do not text")
    campaign = started(segments_input([[seg(everyone())]], [[lab(stop_list)]], second_message=""))
    assert set(outcome(campaign)) == {ava.id, ben.id, cleo.id, dev.id}
    # After the start: one unsubscribes, one is excluded, one gets the exclude rule's label.
    ben.unsubscribed = True
    cleo.excluded = True
    label_contact(dev, stop_list)
    db.session.commit()
    summary = send_batch(sim_app)
    assert summary.claimed == 4 and summary.skipped == 3 and summary.counts["accepted"] == 1
    assert outcome(campaign) == {
        ava.id: ("sent", None),
        ben.id: ("skipped", "no longer eligible (unsubscribed)"),
        cleo.id: ("skipped", "no longer eligible (excluded)"),
        dev.id: ("skipped", EXCLUDE_RULE_REASON),
    }
    stats = compute_stats(db.session.get(Campaign, campaign.id))
    assert stats["recipients"] == 4 and stats["first_sent"] == 1


def test_the_exclude_rule_is_checked_per_campaign_and_only_for_its_own_messages(sim_app):
    ava = ContactFactory()
    watch = MissiveLabelFactory()
    excluding = started(segments_input([[seg(everyone())]], [[lab(watch)]], second_message=""))
    other = started(segments_input([[seg(everyone())]], second_message=""))
    label_contact(ava, watch)
    db.session.commit()
    send_batch(sim_app)
    assert outcome(excluding) == {ava.id: ("skipped", EXCLUDE_RULE_REASON)}
    assert outcome(other) == {ava.id: ("sent", None)}


def test_an_exclude_rule_whose_segment_broke_skips_rather_than_guesses(sim_app):
    ava = ContactFactory()
    doomed = SegmentFactory(rule={"all": []})
    db.session.flush()
    campaign = started(
        segments_input(
            [[seg(everyone())]],
            [[seg(doomed), {"type": "label", "label_id": MissiveLabelFactory().id}]],
            second_message="",
        )
    )
    db.session.delete(doomed)
    db.session.commit()
    send_batch(sim_app)
    assert outcome(campaign) == {ava.id: ("skipped", EXCLUDE_RULE_REASON)}


def test_messages_a_worker_holds_when_the_send_is_cancelled_are_cancelled_at_the_screen(sim_app):
    contacts = ContactFactory.create_batch(3)
    campaign = started(segments_input([[seg(everyone())]]))
    claimed = claim_batch(2)  # a worker holds two of them...
    user = UserFactory()
    cancelled = cancel_send(db.session.get(Campaign, campaign.id), user=user)  # ...then a cancel
    db.session.commit()
    assert cancelled == 1  # the one still queued
    summary = BatchSummary()
    assert screen_claimed(sim_app, claimed, summary) == []
    assert summary.skipped == 2
    assert {s for s, _ in outcome(campaign).values()} == {"cancelled"}
    assert {r for _, r in outcome(campaign).values()} == {SEND_CANCELLED_REASON}
    assert len(outcome(campaign)) == len(contacts)
    stats = compute_stats(db.session.get(Campaign, campaign.id))
    assert stats["first_sent"] == 0 and stats["pending"] == 0
    assert stats["cancelled_by_send"] == 3


def test_the_campaigns_missive_label_goes_with_each_message_to_the_transport(sim_app):
    ContactFactory.create_batch(2)
    MissiveLabelFactory(name="Spring", missive_id="lbl-spring")
    campaign = started(segments_input([[seg(everyone())]], missive_label_name="spring"))
    plain = started(segments_input([[seg(everyone())]]))
    ready = screen_claimed(sim_app, claim_batch(10), BatchSummary())
    labels = {(item.campaign_id, item.labels) for item in ready}
    assert labels == {(campaign.id, ("lbl-spring",)), (plain.id, ())}


def test_a_campaign_with_a_second_message_gets_follow_ups_after_acceptance(sim_app):
    ava, ben = ContactFactory.create_batch(2)
    campaign = started(
        segments_input([[seg(everyone())]], second_message="Any thoughts?", delay_seconds=900)
    )
    assert outcome(campaign, Step.SECOND) == {}  # nothing before acceptance
    before = utcnow()
    send_batch(sim_app)
    follow_ups = db.session.scalars(
        sa.select(OutboundMessage).where(
            OutboundMessage.campaign_id == campaign.id, OutboundMessage.step == Step.SECOND
        )
    ).all()
    assert {f.contact_id for f in follow_ups} == {ava.id, ben.id}
    for follow_up in follow_ups:
        assert follow_up.status == MessageStatus.SCHEDULED and follow_up.body == "Any thoughts?"
        assert before + timedelta(seconds=900) <= follow_up.scheduled_for
        assert follow_up.scheduled_for <= utcnow() + timedelta(seconds=900)


def test_a_personalized_campaign_without_a_second_message_gets_no_follow_up(sim_app):
    ava = ContactFactory()
    upload = personalized_upload([(ava, {"First Name": "Ava", "Place": "the Library"})])
    campaign = started(personalized_input(upload, second_message=""))
    assert db.session.get(Campaign, campaign.id).second_message is None
    assert send_batch(sim_app).counts["accepted"] == 1
    assert outcome(campaign) == {ava.id: ("sent", None)}
    assert outcome(campaign, Step.SECOND) == {}


def test_a_personalized_campaign_with_a_second_message_gets_that_follow_up(sim_app):
    ava = ContactFactory()
    upload = personalized_upload([(ava, {"First Name": "Ava", "Place": "the Library"})])
    campaign = started(personalized_input(upload, second_message="Reply to tell us more."))
    send_batch(sim_app)
    assert outcome(campaign, Step.SECOND) == {ava.id: ("scheduled", None)}


def test_no_follow_up_is_created_for_a_cancelled_send(sim_app):
    campaign = CampaignFactory(sending=True, target_kind=CampaignTarget.SEGMENTS)
    first = OutboundMessageFactory(campaign=campaign, sent=True)
    campaign.status = CampaignStatus.CANCELLED
    db.session.flush()
    assert after_first_accepted([first.id], utcnow()) == []
    campaign.status = CampaignStatus.SENDING
    db.session.flush()
    assert len(after_first_accepted([first.id], utcnow())) == 1


# -- the figures of a campaign -----------------------------------------------------------------
def test_a_campaigns_figures_count_people_and_messages_apart(app):
    campaign = CampaignFactory(sending=True)
    c = ContactFactory.create_batch(5)

    def first(contact, **traits):
        return OutboundMessageFactory(campaign=campaign, contact=contact, **traits)

    first(c[0], delivered=True)
    first(c[1], delivered=True)
    first(c[2], sent=True)
    first(c[3], failed=True)
    replied = first(c[4], replied=True)
    # Follow-ups: two delivered, one cancelled by the reply.
    for contact in c[:2]:
        OutboundMessageFactory(campaign=campaign, contact=contact, step=Step.SECOND, delivered=True)
    OutboundMessageFactory(
        campaign=campaign,
        contact=c[4],
        step=Step.SECOND,
        status=MessageStatus.CANCELLED,
        cancel_reason="replied",
    )
    InboundMessageFactory(reply_to=replied, body="Another thought")  # same person, twice
    db.session.flush()
    stats = compute_stats(campaign)
    # People
    assert stats["recipients"] == 5
    assert stats["first_sent"] == 4 and stats["first_delivered"] == 2
    assert stats["replies"] == 1 and stats["reply_rate"] == 0.2
    # Follow-ups and messages
    assert stats["follow_ups_created"] == 3 and stats["cancelled_by_reply"] == 1
    assert stats["second_sent"] == 2
    assert stats["messages_sent"] == 6 and stats["delivered"] == 4 and stats["failed"] == 1
    assert stats["delivery_rate"] == 0.8
    assert stats["failed_by_code"] == [["21211", 1]]


def test_a_cancelled_campaigns_figures_show_what_the_cancel_stopped_and_stay_within_100(app):
    campaign = CampaignFactory(sending=True, second_message="Follow-up")
    contacts = ContactFactory.create_batch(6)
    for contact in contacts[:2]:
        OutboundMessageFactory(campaign=campaign, contact=contact, delivered=True)
    for contact in contacts[2:]:
        OutboundMessageFactory(campaign=campaign, contact=contact)  # still queued
    OutboundMessageFactory(campaign=campaign, contact=contacts[0], follow_up=True)
    db.session.flush()
    assert cancel_send(campaign, user=None) == 5
    db.session.flush()
    stats = compute_stats(campaign)
    assert stats["recipients"] == 6 and stats["first_sent"] == 2
    assert stats["cancelled_by_send"] == 5
    assert stats["pending"] == 0 and stats["first_waiting"] == 0
    assert stats["cancelled_by_reply"] == 0
    assert campaign.stats == stats  # stored by the cancel
    for name in ("delivery_rate", "reply_rate"):
        assert stats[name] is None or 0 <= stats[name] <= 1
    assert stats["first_done"] <= stats["recipients"]
    assert stats["first_sent"] <= stats["recipients"]


# -- a cancel while a real worker sends --------------------------------------------------------
@pytest.mark.slow
def test_cancelling_while_a_real_worker_sends_stops_it_and_nothing_is_sent_twice():
    import signal

    from app import create_app
    from app.config import parse_quiet_hours
    from app.jobs.sending import enqueue_sending
    from app.models import Contact, Segment
    from bench.common import kill_tree
    from tests.fakes.twilio import FakeTwilio
    from tests.support import (
        make_test_config,
        migrated_scratch_database,
        start_worker_py,
        test_env,
        twilio_worker_settings,
    )

    with migrated_scratch_database("campaign_cancel") as url, FakeTwilio(seed=5) as fake:
        fake.configure(latency_ms=100)
        settings = twilio_worker_settings(fake, SEND_CLAIM_MAX="5", SEND_CONCURRENCY="2")
        config = {
            **settings,
            "QUIET_HOURS": parse_quiet_hours("off"),
            "SEND_RATE_MPS": 1000.0,
            "SEND_CLAIM_MAX": 5,
            "SEND_CONCURRENCY": 2,
        }
        app = create_app(make_test_config(database_url=url, **config))
        worker = None
        with app.app_context():
            try:
                db.session.add_all(Contact(phone=f"+1313555{i:04d}") for i in range(80))
                segment = Segment(name="All", rule={"all": []})
                db.session.add(segment)
                db.session.flush()
                campaign = Campaign(
                    first_message="Polls open at 7",
                    second_message="Did you vote?",
                    status=CampaignStatus.SCHEDULED,
                    run_at=utcnow(),
                    target_kind=CampaignTarget.SEGMENTS,
                    targeting={"include": [[{"type": "segment", "segment_id": segment.id}]]},
                )
                db.session.add(campaign)
                db.session.commit()
                campaign_id = campaign.id
                start_campaign(campaign_id, zone=ZONE)
                enqueue_sending(app)
                worker = start_worker_py(["worker"], test_env(DATABASE_URL=url, **settings))
                deadline = time.monotonic() + 60
                while fake.stats()["accepted"] < 10 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert fake.stats()["accepted"] >= 10, "the worker did not start sending"
                campaign = db.session.get(Campaign, campaign_id, with_for_update=True)
                cancelled = cancel_send(campaign, user=None)
                in_flight = db.session.scalar(
                    sa.select(sa.func.count()).where(
                        OutboundMessage.campaign_id == campaign_id,
                        OutboundMessage.status.in_(("sending", "unknown")),
                    )
                )
                accepted_at_cancel = fake.stats()["accepted"]
                db.session.commit()
                # The worker finishes what it holds and finds nothing more to send.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    db.session.expire_all()
                    busy = db.session.scalar(
                        sa.select(sa.func.count()).where(
                            OutboundMessage.status.in_(("queued", "sending"))
                        )
                    )
                    if not busy:
                        break
                    time.sleep(0.1)
                time.sleep(0.5)
            finally:
                if worker is not None:
                    kill_tree(worker, signal.SIGKILL)
            db.session.expire_all()
            rows = db.session.execute(
                sa.select(
                    OutboundMessage.step, OutboundMessage.status, OutboundMessage.cancel_reason
                ).where(OutboundMessage.campaign_id == campaign_id)
            ).all()
            firsts = [r for r in rows if r.step == Step.FIRST]
            sent = [r for r in firsts if r.status in ("sent", "delivered")]
            assert cancelled > 0 and len(firsts) == 80
            assert {str(r.status) for r in firsts} <= {"sent", "delivered", "cancelled"}
            reasons = {r.cancel_reason for r in firsts if r.status == "cancelled"}
            assert reasons == {SEND_CANCELLED_REASON}
            # Only what a worker already held could still go out after the cancel.
            assert len(sent) <= accepted_at_cancel + in_flight
            assert fake.stats()["accepted"] == len(sent) and fake.stats()["duplicates"] == 0
            # Follow-ups of messages accepted before the cancel were cancelled with it. One
            # a worker was creating at that very moment (its transaction not yet committed)
            # waits as scheduled; when its time comes, the claim cancels it: none is sent.
            accepted = fake.stats()["accepted"]
            release_due(utcnow() + timedelta(days=1))
            send_batch(app)
            db.session.expire_all()
            follow_ups = db.session.execute(
                sa.select(OutboundMessage.status, OutboundMessage.cancel_reason).where(
                    OutboundMessage.campaign_id == campaign_id, OutboundMessage.step == Step.SECOND
                )
            ).all()
            assert {(str(status), reason) for status, reason in follow_ups} <= {
                ("cancelled", SEND_CANCELLED_REASON)
            }
            assert fake.stats()["accepted"] == accepted
            stats = compute_stats(db.session.get(Campaign, campaign_id))
            assert stats["cancelled_by_send"] == (
                len([r for r in firsts if r.status == "cancelled"]) + len(follow_ups)
            )
            assert stats["pending"] == 0
            db.session.remove()
            db.engine.dispose()
