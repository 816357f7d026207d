"""The factories make rows the database accepts, in the states their traits name."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    InboundMessage,
    Keyword,
    MessageStatus,
    OutboundMessage,
    Step,
    UploadContact,
    UploadStatus,
    utcnow,
)
from tests.factories import (
    BroadcastFactory,
    CampaignFactory,
    ContactFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
    UploadFactory,
    sent_with_follow_up,
)


def test_an_outbound_message_is_queued_for_a_started_broadcast_of_its_own(app):
    first, second = OutboundMessageFactory.create_batch(2)
    db.session.commit()
    assert first.status == MessageStatus.QUEUED and first.step == Step.FIRST
    assert first.broadcast_id != second.broadcast_id and first.campaign_id is None
    assert first.body == first.broadcast.first_message and first.sms_segments == 1


def test_a_message_of_a_campaign_has_no_broadcast(app):
    campaign = CampaignFactory(sending=True)
    message = OutboundMessageFactory(campaign=campaign, follow_up=True)
    db.session.commit()
    assert message.broadcast_id is None and message.campaign_id == campaign.id
    assert message.body == campaign.second_message and message.status == MessageStatus.SCHEDULED
    assert message.scheduled_for > utcnow()


def test_the_status_traits_fill_what_the_engine_and_callbacks_would(app):
    sent = OutboundMessageFactory(sent=True)
    delivered = OutboundMessageFactory(delivered=True)
    undelivered = OutboundMessageFactory(undelivered=True)
    failed = OutboundMessageFactory(failed=True)
    db.session.commit()
    assert sent.provider_sid.startswith("SM") and sent.sent_at < utcnow()
    assert sent.provider_sid != delivered.provider_sid
    assert (
        delivered.status == MessageStatus.DELIVERED and delivered.delivered_at > delivered.sent_at
    )
    assert undelivered.error_code and undelivered.failed_at and undelivered.provider_sid
    assert failed.status == MessageStatus.FAILED and failed.provider_sid is None


def test_a_replied_message_has_its_reply_from_the_same_contact_after_it(app):
    message = OutboundMessageFactory(replied=True)
    db.session.commit()
    reply = db.session.scalar(
        sa.select(InboundMessage).where(InboundMessage.reply_to_id == message.id)
    )
    assert reply.contact_id == message.contact_id and reply.phone == message.contact.phone
    assert reply.received_at > message.sent_at


def test_an_inbound_message_and_an_opt_out(app):
    contact = ContactFactory()
    stop = InboundMessageFactory(contact=contact, stop=True)
    anonymous = InboundMessageFactory(contact=None, phone="Newsroom")
    db.session.commit()
    assert stop.keyword == Keyword.STOP and stop.phone == contact.phone
    assert anonymous.contact_id is None


def test_a_sent_first_message_with_its_follow_up(app):
    contact = ContactFactory()
    broadcast = BroadcastFactory(sending=True)
    at = utcnow() - timedelta(minutes=5)
    first, second = sent_with_follow_up(contact, broadcast, sent_at=at)
    db.session.commit()
    assert (first.step, first.status, first.sent_at) == (Step.FIRST, MessageStatus.SENT, at)
    assert (second.step, second.status) == (Step.SECOND, MessageStatus.SCHEDULED)
    assert second.scheduled_for == at + timedelta(minutes=10)
    assert {first.broadcast_id, second.broadcast_id} == {broadcast.id}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 2


def test_an_upload_with_its_contacts(app):
    contacts = ContactFactory.create_batch(2)
    upload = UploadFactory(contacts=contacts, done=True)
    db.session.commit()
    rows = db.session.scalars(sa.select(UploadContact).order_by(UploadContact.row_number)).all()
    assert [(r.contact_id, r.row_number) for r in rows] == [
        (contacts[0].id, 2),
        (contacts[1].id, 3),
    ]
    assert upload.status == UploadStatus.DONE and upload.finished_at is not None
