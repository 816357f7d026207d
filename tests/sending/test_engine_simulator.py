"""The pipeline in-process with the simulator: claim, screen, send, record, follow up, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import MessageStatus, OutboundMessage, Setting, Step, utcnow
from app.sending.cancel import cancel_pending_messages
from app.sending.engine import claim_batch, send_batch
from app.sending.outbound import create_outbound
from app.sending.quiet import next_opening
from app.sending.recovery import release_due
from tests.factories import BroadcastFactory, ContactFactory, InboundMessageFactory


def statuses(broadcast_id: int, step: Step = Step.FIRST) -> dict[int, MessageStatus]:
    rows = db.session.execute(
        sa.select(OutboundMessage.contact_id, OutboundMessage.status).where(
            OutboundMessage.broadcast_id == broadcast_id, OutboundMessage.step == step
        )
    )
    return dict(rows.all())


def test_creating_outbound_rows_twice_creates_each_once(sim_app):
    broadcast = BroadcastFactory()
    contacts = ContactFactory.create_batch(3)
    ids = [c.id for c in contacts]
    assert create_outbound(broadcast, ids, "Hi") == 3
    assert create_outbound(broadcast, ids + ids, "Hi") == 0
    db.session.commit()
    assert len(statuses(broadcast.id)) == 3


def test_a_batch_is_sent_and_each_first_message_gets_its_follow_up_at_the_right_time(
    sim_app, make_send
):
    broadcast, contacts, rows = make_send(4, delay_seconds=900)
    before = utcnow()
    summary = send_batch(sim_app)
    assert summary.claimed == 4 and summary.counts["accepted"] == 4
    db.session.expire_all()
    sent = db.session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.step == Step.FIRST)
    ).all()
    assert {m.status for m in sent} == {MessageStatus.SENT}
    assert all(m.provider_sid.startswith("SIM") and m.transport == "simulator" for m in sent)
    follow_ups = db.session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.step == Step.SECOND)
    ).all()
    assert len(follow_ups) == 4
    for follow_up in follow_ups:
        assert follow_up.status == MessageStatus.SCHEDULED
        assert follow_up.body == broadcast.second_message
        expected = before + timedelta(seconds=900)
        assert expected <= follow_up.scheduled_for <= utcnow() + timedelta(seconds=900)
    # Not due yet: the tick leaves them; once due, it queues them.
    assert release_due()["released_scheduled"] == 0
    assert release_due(utcnow() + timedelta(seconds=901))["released_scheduled"] == 4


def test_a_send_without_second_message_creates_no_follow_up(sim_app, make_send):
    make_send(2, second_message=None)
    send_batch(sim_app)
    count = db.session.scalar(sa.select(sa.func.count()).where(OutboundMessage.step == Step.SECOND))
    assert count == 0


def test_a_claim_takes_each_message_once(sim_app, make_send):
    make_send(5)
    first = claim_batch(3)
    second = claim_batch(10)
    assert len(first) == 3 and len(second) == 2
    assert not {c.id for c in first} & {c.id for c in second}
    assert claim_batch(10) == []
    assert all(c.attempts == 1 for c in first + second)


def test_unsubscribed_or_excluded_contacts_are_skipped_at_claim_time(sim_app, make_send):
    broadcast, contacts, _ = make_send(3)
    contacts[0].unsubscribed = True
    contacts[1].excluded = True
    db.session.commit()
    summary = send_batch(sim_app)
    assert summary.skipped == 2
    db.session.expire_all()
    result = statuses(broadcast.id)
    assert result[contacts[0].id] == MessageStatus.SKIPPED
    assert result[contacts[1].id] == MessageStatus.SKIPPED
    assert result[contacts[2].id] == MessageStatus.SENT


def test_quiet_hours_hold_messages_until_the_recipients_window_opens(engine_app):
    app = engine_app(QUIET_HOURS=("09:00", "20:00"))
    with app.app_context():
        broadcast = BroadcastFactory()
        # A Detroit number and a Los Angeles number; an explicit time zone wins over the number.
        detroit = ContactFactory(phone="+13135550101")
        la = ContactFactory(phone="+12135550101")
        tokyo = ContactFactory(phone="+13135550102", time_zone="Asia/Tokyo")
        create_outbound(broadcast, [detroit.id, la.id, tokyo.id], "Hi")
        db.session.commit()
        summary = send_batch(app)
        db.session.expire_all()
        rows = {
            m.contact_id: m
            for m in db.session.scalars(
                sa.select(OutboundMessage).where(OutboundMessage.step == Step.FIRST)
            )
        }
        now = utcnow()
        from zoneinfo import ZoneInfo

        for contact, zone in (
            (detroit, "America/Detroit"),
            (la, "America/Los_Angeles"),
            (tokyo, "Asia/Tokyo"),
        ):
            row = rows[contact.id]
            opening = next_opening(now, ZoneInfo(zone), (app_time("09:00"), app_time("20:00")))
            if opening is None:
                assert row.status == MessageStatus.SENT
            else:
                assert row.status == MessageStatus.SCHEDULED and row.attempts == 0
                assert abs((row.scheduled_for - opening).total_seconds()) < 120
        assert summary.held + summary.counts["accepted"] == 3


def app_time(value: str):
    from datetime import time

    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def test_next_opening_is_the_same_day_before_the_window_and_the_next_day_after():
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Detroit")
    window = (app_time("09:00"), app_time("20:00"))
    early = datetime(2026, 3, 8, 11, 0, tzinfo=UTC)  # 07:00 EDT, the DST change day
    assert next_opening(early, zone, window) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    inside = datetime(2026, 3, 8, 15, 0, tzinfo=UTC)
    assert next_opening(inside, zone, window) is None
    late = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)  # 21:30 EST on Oct 31 → Nov 1 09:00 EST
    assert next_opening(late, zone, window) == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_an_admin_setting_turns_quiet_hours_off(engine_app):
    app = engine_app(QUIET_HOURS=("00:00", "00:01"))
    with app.app_context():
        db.session.add(Setting(key="quiet_hours", value=None))
        broadcast = BroadcastFactory()
        contact = ContactFactory()
        create_outbound(broadcast, [contact.id], "Hi")
        db.session.commit()
        assert send_batch(app).counts["accepted"] == 1


def test_cancelling_pending_messages_touches_only_pending_ones_of_that_contact(sim_app, make_send):
    broadcast, contacts, rows = make_send(2)
    send_batch(sim_app)  # first messages sent, follow-ups scheduled
    other = BroadcastFactory(status="sent")
    create_outbound(other, [c.id for c in contacts], "Other news")
    db.session.commit()
    cancelled = cancel_pending_messages([contacts[0].id], "unsubscribed")
    db.session.commit()
    assert cancelled == 2  # its follow-up and its queued message of the other send
    db.session.expire_all()
    mine = db.session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.contact_id == contacts[0].id)
    ).all()
    by_status = sorted((m.step, m.status) for m in mine)
    assert by_status == [
        (Step.FIRST, MessageStatus.CANCELLED),
        (Step.FIRST, MessageStatus.SENT),
        (Step.SECOND, MessageStatus.CANCELLED),
    ]
    assert all(m.cancel_reason == "unsubscribed" for m in mine if m.status == "cancelled")
    theirs = statuses(other.id)
    assert theirs[contacts[1].id] == MessageStatus.QUEUED


def test_cancelling_can_be_narrowed_to_one_send_and_step(sim_app, make_send):
    broadcast, contacts, rows = make_send(1)
    send_batch(sim_app)
    other = BroadcastFactory(status="sent")
    create_outbound(other, [contacts[0].id], "Other")
    db.session.commit()
    assert (
        cancel_pending_messages(
            [contacts[0].id], "replied", broadcast_id=broadcast.id, step=Step.SECOND
        )
        == 1
    )
    db.session.commit()
    assert statuses(other.id)[contacts[0].id] == MessageStatus.QUEUED


def test_a_follow_up_already_queued_is_skipped_when_the_contact_replied(sim_app, make_send):
    broadcast, contacts, _ = make_send(2, delay_seconds=0)
    send_batch(sim_app)
    release_due(utcnow() + timedelta(seconds=1))  # both follow-ups queued, about to be claimed
    InboundMessageFactory(contact=contacts[0], body="Thanks, see you there")
    # A STOP is handled by the opt-out path, not counted as a reply here.
    InboundMessageFactory(contact=contacts[1], stop=True)
    db.session.commit()
    summary = send_batch(sim_app)
    assert summary.skipped == 1 and summary.counts["accepted"] == 1
    db.session.expire_all()
    follow_ups = statuses(broadcast.id, Step.SECOND)
    assert follow_ups[contacts[0].id] == MessageStatus.CANCELLED
    assert follow_ups[contacts[1].id] == MessageStatus.SENT
