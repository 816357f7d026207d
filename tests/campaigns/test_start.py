"""Starting campaigns: rows written once with the right bodies, the first figures, a target that
stopped working, three processes racing, and the tick's due, caught-up and missed campaigns."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.campaigns.services import run_due_campaigns, save_campaign, start_campaign
from app.extensions import db
from app.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.sms import sms_segments
from app.sends.stats import STATS_VERSION, compute_stats, initial_stats
from app.validation import ValidationError
from tests.campaigns.builders import (
    ZONE,
    everyone,
    personalized_input,
    personalized_upload,
    seg,
)
from tests.factories import CampaignFactory, ContactFactory, SegmentFactory, UserFactory
from tests.support import migrated_scratch_database


def rows_of(campaign_id: int) -> list[OutboundMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboundMessage)
            .where(OutboundMessage.campaign_id == campaign_id)
            .order_by(OutboundMessage.contact_id)
        )
    )


def scheduled(targeting=None, **fields) -> Campaign:
    """A scheduled segments campaign due now (made directly: a past run time is the point)."""
    campaign = CampaignFactory(
        status=fields.pop("status", CampaignStatus.SCHEDULED),
        run_at=fields.pop("run_at", utcnow() - timedelta(seconds=5)),
        target_kind=CampaignTarget.SEGMENTS,
        targeting=targeting or {"include": [[seg(everyone())]], "exclude": []},
        **fields,
    )
    db.session.commit()
    return campaign


def audits(action: str) -> list[AuditLog]:
    return list(db.session.scalars(sa.select(AuditLog).where(AuditLog.action == action)))


def test_starting_writes_each_first_message_once_with_the_first_figures(app):
    contacts = ContactFactory.create_batch(4)
    ContactFactory(unsubscribed=True)
    user = UserFactory()
    campaign = scheduled(first_message="Hello, " + "x" * 160)
    now = utcnow()
    started = start_campaign(campaign.id, now=now, user=user, zone=ZONE)
    assert started is not None and started.id == campaign.id
    assert started.status == CampaignStatus.SENDING
    assert (started.started_at, started.started_by_id) == (now, user.id)
    rows = rows_of(campaign.id)
    assert [r.contact_id for r in rows] == [c.id for c in contacts]
    assert {(r.step, r.status, r.body, r.sms_segments) for r in rows} == {
        (Step.FIRST, MessageStatus.QUEUED, campaign.first_message, 2)
    }
    assert all(r.broadcast_id is None and r.created_at == now for r in rows)
    assert started.actual_recipients == 4
    assert started.stats == initial_stats(4) and started.stats_version == STATS_VERSION
    # The stored first figures are what counting the rows gives.
    assert {k: v for k, v in compute_stats(started).items()} == started.stats
    assert [a.summary for a in audits("campaign.start")] == [
        f"Campaign {campaign.id} started with 4 recipients"
    ]
    # Starting again does nothing.
    assert start_campaign(campaign.id, now=utcnow(), zone=ZONE) is None
    assert len(rows_of(campaign.id)) == 4


def test_a_personalized_start_writes_each_persons_own_text(app):
    ava, ben, uri = ContactFactory(), ContactFactory(), ContactFactory(unsubscribed=True)
    upload = personalized_upload(
        [
            (ava, {"First Name": "Ava", "Place": "the Library"}),
            (ben, {"First Name": "Zoë", "Place": "Room " + "9" * 60}),
            (uri, {"First Name": "Uri", "Place": "the School"}),
        ]
    )
    campaign = save_campaign(
        None, personalized_input(upload), schedule=True, user=None, now=utcnow(), zone=ZONE
    )
    db.session.commit()
    start_campaign(campaign.id, now=utcnow(), zone=ZONE)
    rows = {r.contact_id: r for r in rows_of(campaign.id)}
    assert set(rows) == {ava.id, ben.id}
    assert rows[ava.id].body == "Hi Ava, vote at the Library."
    assert rows[ben.id].body == f"Hi Zoë, vote at Room {'9' * 60}."
    assert rows[ben.id].sms_segments == sms_segments(rows[ben.id].body) == 2  # UCS-2, 83 chars
    assert campaign.actual_recipients == 2


def test_a_campaign_nobody_is_eligible_for_is_sent_at_once_with_a_note(app):
    ContactFactory(unsubscribed=True)
    campaign = scheduled()
    started = start_campaign(campaign.id, now=utcnow(), zone=ZONE)
    assert started.status == CampaignStatus.SENT and started.finished_at is not None
    assert started.actual_recipients == 0 and rows_of(campaign.id) == []
    assert "Nobody was eligible" in started.status_note


def test_a_raw_sql_segment_that_fails_at_the_start_puts_it_back_to_draft(app):
    ContactFactory.create_batch(2)
    raw = SegmentFactory(
        name="Old SQL", rule={"all": []}, raw_sql="SELECT phone AS phone_number FROM contacts"
    )
    campaign = scheduled({"include": [[seg(raw)]], "exclude": []})
    raw.raw_sql = "SELECT nope AS phone_number FROM contacts"  # a column that went away
    db.session.commit()
    with pytest.raises(
        ValidationError, match="could not start: Segment Old SQL: Unknown column nope"
    ):
        start_campaign(campaign.id, now=utcnow(), zone=ZONE)
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert campaign.status == CampaignStatus.DRAFT and campaign.started_at is None
    assert (
        "Not started at" in campaign.status_note and "Unknown column nope" in campaign.status_note
    )
    assert rows_of(campaign.id) == []
    assert [a.object_id for a in audits("campaign.failed_start")] == [str(campaign.id)]


def test_a_segment_deleted_before_the_start_puts_it_back_to_draft(app):
    ContactFactory.create_batch(2)
    doomed = SegmentFactory(rule={"all": []})
    campaign = scheduled({"include": [[seg(everyone())], [seg(doomed)]], "exclude": []})
    db.session.delete(doomed)
    db.session.commit()
    with pytest.raises(ValidationError, match=f"Segment {doomed.id} does not exist"):
        start_campaign(campaign.id, now=utcnow(), zone=ZONE)
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert campaign.status == CampaignStatus.DRAFT and rows_of(campaign.id) == []
    assert f"Segment {doomed.id} does not exist" in campaign.status_note


def test_only_a_scheduled_campaign_starts(app):
    ContactFactory()
    for status in (CampaignStatus.DRAFT, CampaignStatus.SENDING, CampaignStatus.CANCELLED):
        campaign = scheduled(status=status)
        assert start_campaign(campaign.id, now=utcnow(), zone=ZONE) is None
        assert rows_of(campaign.id) == []
    assert start_campaign(987654, now=utcnow(), zone=ZONE) is None


# -- the tick ----------------------------------------------------------------------------------
def test_due_campaigns_start_and_future_ones_wait(app):
    ContactFactory.create_batch(3)
    due = scheduled(run_at=utcnow() - timedelta(seconds=30))
    later = scheduled(run_at=utcnow() + timedelta(minutes=5))
    result = run_due_campaigns(zone=ZONE, catch_up_minutes=60, now=utcnow())
    assert result == {"campaigns_started": [due.id]}
    db.session.expire_all()
    assert db.session.get(Campaign, due.id).status == CampaignStatus.SENDING
    assert db.session.get(Campaign, later.id).status == CampaignStatus.SCHEDULED
    assert len(rows_of(due.id)) == 3
    # The next tick has nothing to do.
    assert run_due_campaigns(zone=ZONE, catch_up_minutes=60, now=utcnow()) == {}


def test_a_tick_missed_for_ten_minutes_still_starts_it(app):
    ContactFactory.create_batch(2)
    late = scheduled(run_at=utcnow() - timedelta(minutes=10))
    assert run_due_campaigns(zone=ZONE, catch_up_minutes=60) == {"campaigns_started": [late.id]}
    db.session.expire_all()
    assert db.session.get(Campaign, late.id).actual_recipients == 2


def test_a_campaign_missed_by_more_than_the_catch_up_window_goes_back_to_draft(app):
    ContactFactory.create_batch(2)
    missed = scheduled(run_at=utcnow() - timedelta(minutes=61))
    result = run_due_campaigns(zone=ZONE, catch_up_minutes=60)
    assert result == {"campaigns_skipped": [missed.id]}
    db.session.expire_all()
    missed = db.session.get(Campaign, missed.id)
    assert missed.status == CampaignStatus.DRAFT and missed.started_at is None
    assert "passed more than 60 minutes before the scheduler could start it" in missed.status_note
    assert rows_of(missed.id) == []
    entry = audits("campaign.skipped")
    assert [(a.object_id, a.actor) for a in entry] == [(str(missed.id), "schedule")]
    assert "missed the catch-up window" in entry[0].summary
    # Skipped once: the next tick neither starts it nor records it again.
    assert run_due_campaigns(zone=ZONE, catch_up_minutes=60) == {}
    assert len(audits("campaign.skipped")) == 1


def test_a_campaign_whose_target_broke_is_counted_as_failed_and_the_rest_start(app):
    ContactFactory()
    doomed = SegmentFactory(rule={"all": []})
    broken = scheduled({"include": [[seg(doomed)]], "exclude": []})
    fine = scheduled()
    db.session.delete(doomed)
    db.session.commit()
    result = run_due_campaigns(zone=ZONE, catch_up_minutes=60)
    assert result == {"campaigns_started": [fine.id], "campaigns_failed": [broken.id]}


def test_the_tick_starts_due_campaigns_and_enqueues_their_sending(make_app):
    app = make_app(BROADCAST_CATCHUP_MINUTES=60)
    from app.jobs.tick import tick

    with app.app_context():
        ContactFactory.create_batch(2)
        due = scheduled(run_at=utcnow() - timedelta(minutes=10))
        missed = scheduled(run_at=utcnow() - timedelta(minutes=90))
        result = tick()
        assert result["campaigns_started"] == [due.id]
        assert result["campaigns_skipped"] == [missed.id]
        assert result["send_jobs_enqueued"] >= 1
        db.session.expire_all()
        assert db.session.get(Campaign, due.id).status == CampaignStatus.SENDING
        assert db.session.get(Campaign, missed.id).status == CampaignStatus.DRAFT


@pytest.mark.slow
def test_three_processes_racing_to_start_one_campaign_start_it_once():
    from app import create_app
    from tests.support import make_test_config

    with migrated_scratch_database("campaign_race") as url:
        other = create_app(make_test_config(database_url=url))
        with other.app_context():
            from app.models import Contact, Segment

            db.session.add_all(Contact(phone=f"+1313555{i:04d}") for i in range(300))
            segment = Segment(name="All", rule={"all": []})
            db.session.add(segment)
            db.session.flush()
            campaign = Campaign(
                first_message="Race",
                status=CampaignStatus.SCHEDULED,
                run_at=utcnow(),
                target_kind=CampaignTarget.SEGMENTS,
                targeting={"include": [[{"type": "segment", "segment_id": segment.id}]]},
            )
            db.session.add(campaign)
            db.session.commit()
            campaign_id = campaign.id
            db.session.remove()
            db.engine.dispose()
        go = time.time() + 4  # each process builds its app first, then all start together
        script = (
            "import time; from app import create_app; from tests.support import make_test_config;"
            "from app.campaigns.services import start_campaign;"
            f"app = create_app(make_test_config(database_url={url!r}));"
            "ctx = app.app_context(); ctx.push();"
            "from app.extensions import db; import sqlalchemy as sa;"
            "db.session.execute(sa.text('SELECT 1')); db.session.rollback();"
            f"time.sleep(max(0, {go} - time.time()));"
            f"c = start_campaign({campaign_id}, zone='America/Detroit');"
            "print('started' if c else 'already')"
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=90) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
        assert sorted(out.strip() for out, _ in outputs) == ["already", "already", "started"]
        with other.app_context():
            count = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage))
            stored = db.session.get(Campaign, campaign_id)
            status, actual = stored.status, stored.actual_recipients
            starts = db.session.scalar(
                sa.select(sa.func.count()).where(AuditLog.action == "campaign.start")
            )
            db.session.remove()
            db.engine.dispose()
        assert (count, actual, status, starts) == (300, 300, CampaignStatus.SENDING, 1)
