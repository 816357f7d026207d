"""Inbound processing (SPEC 6.5): replies linked within the window cancel the follow-up, opt-outs
cancel everything pending, opt-ins resubscribe, and nothing happens twice."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.inbound.services import InboundSMS, record_inbound
from app.models import AuditLog, Contact, InboundMessage, Keyword, MessageStatus, Step, utcnow
from tests.factories import ContactFactory, OutboundMessageFactory, sent_with_follow_up

WINDOW = 36


def receive(phone: str, body: str, sid: str = "SM1", at=None):
    result = record_inbound(
        InboundSMS("twilio", sid, phone, body, received_at=at), reply_window_hours=WINDOW
    )
    db.session.commit()
    return result


def refreshed(*rows):
    db.session.expire_all()
    return [db.session.get(type(row), row.id) for row in rows]


def test_a_reply_within_the_window_links_to_the_first_message_and_cancels_the_follow_up(
    contact, sent
):
    first, follow_up = sent
    result = receive(contact.phone, "Thanks, I read it")
    assert result.keyword is None and result.reply_to_id == first.id and result.cancelled == 1
    first, follow_up = refreshed(first, follow_up)
    assert follow_up.status == MessageStatus.CANCELLED and follow_up.cancel_reason == "replied"
    assert first.status == MessageStatus.SENT
    assert db.session.scalar(sa.select(InboundMessage.reply_to_id)) == first.id
    assert not db.session.get(Contact, contact.id).unsubscribed


def test_a_reply_links_to_the_latest_message_sent_within_the_window(contact):
    old, _ = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(hours=30))
    recent, _ = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(hours=2))
    assert receive(contact.phone, "ok").reply_to_id == recent.id
    assert old.id != recent.id


def test_a_reply_outside_the_window_is_linked_to_nothing(contact):
    sent_with_follow_up(
        contact,
        sent_at=utcnow() - timedelta(hours=WINDOW + 1),
        follow_up_in=timedelta(hours=48),
    )
    result = receive(contact.phone, "late answer")
    assert result.reply_to_id is None
    assert db.session.scalar(sa.select(InboundMessage.reply_to_id)) is None


def test_a_reply_at_the_edge_of_the_window_is_linked(contact):
    first, _ = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(hours=35))
    assert receive(contact.phone, "still here").reply_to_id == first.id


def test_a_reply_does_not_touch_other_contacts_or_the_first_messages_of_others(contact, sent):
    other = ContactFactory()
    db.session.commit()
    _, other_follow_up = sent_with_follow_up(other, sent[0].broadcast, sent_at=sent[0].sent_at)
    receive(contact.phone, "hello")
    (other_follow_up,) = refreshed(other_follow_up)
    assert other_follow_up.status == MessageStatus.SCHEDULED


def test_a_keyword_is_not_a_reply_and_help_cancels_nothing(contact, sent):
    result = receive(contact.phone, "HELP")
    assert result.keyword == Keyword.HELP and result.reply_to_id == sent[0].id
    (follow_up,) = refreshed(sent[1])
    assert follow_up.status == MessageStatus.SCHEDULED


def test_a_reply_that_contains_stop_is_not_an_opt_out(contact, sent):
    result = receive(contact.phone, "Stop please, I mean stop by later")
    assert result.keyword is None
    (row,) = refreshed(contact)
    assert not row.unsubscribed
    (follow_up,) = refreshed(sent[1])
    assert follow_up.cancel_reason == "replied"


def test_opt_out_unsubscribes_and_cancels_every_pending_message(contact, sent):
    queued = OutboundMessageFactory(contact=contact)  # each of another started broadcast
    retrying = OutboundMessageFactory(contact=contact, status=MessageStatus.RETRYING)
    db.session.commit()
    result = receive(contact.phone, " STOP! ")
    assert result.keyword == Keyword.STOP and result.subscription_changed
    assert result.cancelled == 3 and result.reply_to_id == sent[0].id
    row, follow_up, queued, retrying, first = refreshed(contact, sent[1], queued, retrying, sent[0])
    assert row.unsubscribed and row.unsubscribed_at is not None
    assert {m.status for m in (follow_up, queued, retrying)} == {MessageStatus.CANCELLED}
    assert {m.cancel_reason for m in (follow_up, queued, retrying)} == {"unsubscribed"}
    assert first.status == MessageStatus.SENT  # already sent: history is not rewritten
    assert db.session.scalar(sa.select(InboundMessage.keyword)) == "stop"


def test_stop_twice_is_audited_once(contact):
    receive(contact.phone, "stop", sid="SMa")
    receive(contact.phone, "STOP", sid="SMb")
    audits = db.session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "contact_unsubscribe")
    ).all()
    assert len(audits) == 1 and audits[0].actor.endswith("(inbound STOP)")


def test_start_resubscribes_an_unsubscribed_contact_and_yes_alone_is_enough(contact):
    receive(contact.phone, "stop", sid="SMa")
    result = receive(contact.phone, "Yes", sid="SMb")
    assert result.keyword == Keyword.START and result.subscription_changed
    (row,) = refreshed(contact)
    assert not row.unsubscribed and row.unsubscribe_reason is None


def test_start_leaves_an_excluded_contact_excluded(contact):
    contact.excluded = True
    db.session.commit()
    receive(contact.phone, "START")
    (row,) = refreshed(contact)
    assert row.excluded


def test_the_same_message_delivered_twice_acts_once(contact, sent):
    first = receive(contact.phone, "stop", sid="SMsame")
    second = receive(contact.phone, "stop", sid="SMsame")
    assert not first.duplicate and second.duplicate and second.inbound_id is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 1


def test_a_sender_that_is_not_a_phone_number_is_stored_without_a_contact():
    result = receive("Newsroom", "STOP")
    assert result.contact_id is None and result.inbound_id is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_a_follow_up_already_claimed_is_left_to_the_engine(contact, sent):
    _, follow_up = sent
    follow_up.status = MessageStatus.SENDING
    db.session.commit()
    assert receive(contact.phone, "hi").cancelled == 0
    (follow_up,) = refreshed(follow_up)
    assert follow_up.status == MessageStatus.SENDING and follow_up.step == Step.SECOND
