"""The engine with the real twilio client against the fake Twilio server: every outcome class."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Contact, ExcludeReason, MessageStatus, OutboundMessage, Step, utcnow
from app.sending.engine import BatchSummary, claim_batch, screen_claimed, send_batch
from app.sending.outbound import create_outbound
from app.sending.recovery import recover_stale_claims, release_due
from app.sending.transports import OutboundItem, get_transport
from tests.factories import BroadcastFactory
from tests.fakes.twilio import FakeTwilio

FROM = "+13135559999"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=7) as server:
        yield server


@pytest.fixture
def twilio_app(engine_app, fake):
    def make(**overrides):
        settings = fake.app_settings(
            TWILIO_FROM_NUMBER=FROM, PUBLIC_BASE_URL="https://broadcaster.example.org"
        )
        return engine_app(**{**settings, **overrides})

    return make


@pytest.fixture
def app(twilio_app) -> Iterator:
    app = twilio_app()
    with app.app_context():
        yield app


def rows(step: Step = Step.FIRST) -> list[OutboundMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboundMessage)
            .where(OutboundMessage.step == step)
            .order_by(OutboundMessage.id)
        )
    )


def test_happy_path_every_message_accepted_once_with_our_id_in_its_callback(app, fake, make_send):
    broadcast, contacts, _ = make_send(5, delay_seconds=600)
    summary = send_batch(app)
    assert summary.counts["accepted"] == 5
    sent = rows()
    assert {m.status for m in sent} == {MessageStatus.SENT}
    assert {m.provider_status for m in sent} == {"queued"}
    records = {r["sid"]: r for r in fake.messages()}
    assert {m.provider_sid for m in sent} == set(records)
    for message in sent:
        record = records[message.provider_sid]
        assert record["to"] == message.contact.phone and record["body"] == message.body
        assert record["from"] == FROM
        assert record["status_callback"] == (
            f"https://broadcaster.example.org/webhooks/twilio/status?m={message.id}"
        )
    assert fake.stats()["duplicates"] == 0
    assert len(rows(Step.SECOND)) == 5


@pytest.mark.parametrize(
    ("option", "code"),
    [("rate_429", "20429"), ("rate_500", None)],
)
def test_rate_limits_and_server_errors_are_retried_with_backoff_then_fail(
    app, fake, make_send, option, code
):
    make_send(1)
    fake.configure(**{option: 1.0})
    before = utcnow()
    send_batch(app)
    [message] = rows()
    assert message.status == MessageStatus.RETRYING and message.attempts == 1
    if code:
        assert message.error_code == code
    assert (
        before + timedelta(seconds=59)
        <= message.next_attempt_at
        <= utcnow() + timedelta(seconds=61)
    )
    waits = [300, 900]
    for attempt, wait in enumerate(waits, start=2):
        assert release_due(message.next_attempt_at)["released_retries"] == 1
        send_batch(app)
        [message] = rows()
        assert message.status == MessageStatus.RETRYING and message.attempts == attempt
        assert message.next_attempt_at >= utcnow() + timedelta(seconds=wait - 2)
    release_due(message.next_attempt_at)
    send_batch(app)
    [message] = rows()
    assert message.status == MessageStatus.FAILED and message.attempts == 4
    assert message.error_message.startswith("retry limit")
    assert fake.stats()["accepted"] == 0


def test_a_retry_that_then_succeeds_is_sent_once(app, fake, make_send):
    make_send(2)
    fake.configure(rate_500=1.0)
    send_batch(app)
    fake.configure(rate_500=0.0)
    release_due(utcnow() + timedelta(minutes=2))
    send_batch(app)
    assert {m.status for m in rows()} == {MessageStatus.SENT}
    assert fake.stats()["accepted"] == 2 and fake.stats()["duplicates"] == 0


def test_a_connection_that_cannot_be_made_is_retried(twilio_app, make_send):
    from tests.support import free_port

    app = twilio_app(TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    with app.app_context():
        make_send(1)
        send_batch(app)
        [message] = rows()
        assert message.status == MessageStatus.RETRYING
        assert "could not connect" in message.error_message


def test_21610_fails_the_message_and_unsubscribes_the_contact(app, fake, make_send):
    broadcast, contacts, _ = make_send(2)
    fake.configure(error_numbers={contacts[0].phone: 21610})
    other = BroadcastFactory(status="sent")
    create_outbound(
        other, [contacts[0].id], "Later news", scheduled_for=utcnow() + timedelta(days=1)
    )
    db.session.commit()
    send_batch(app)
    failed, sent = rows()[0], rows()[1]
    assert failed.status == MessageStatus.FAILED and failed.error_code == "21610"
    assert sent.status == MessageStatus.SENT
    contact = db.session.get(Contact, contacts[0].id)
    assert contact.unsubscribed and "21610" in contact.unsubscribe_reason
    pending = db.session.scalar(
        sa.select(OutboundMessage).where(OutboundMessage.broadcast_id == other.id)
    )
    assert pending.status == MessageStatus.CANCELLED
    assert rows(Step.SECOND)[0].contact_id == contacts[1].id  # no follow-up for the failed one


@pytest.mark.parametrize("code", [21211, 21614])
def test_invalid_or_non_mobile_numbers_fail_and_exclude_the_contact(app, fake, make_send, code):
    broadcast, contacts, _ = make_send(1)
    fake.configure(error_numbers={contacts[0].phone: code})
    send_batch(app)
    [message] = rows()
    assert message.status == MessageStatus.FAILED and message.error_code == str(code)
    contact = db.session.get(Contact, contacts[0].id)
    assert contact.excluded and contact.exclude_reason == ExcludeReason.INVALID_NUMBER


def test_other_client_errors_fail_without_retry(app, fake, make_send):
    broadcast, contacts, _ = make_send(1)
    fake.configure(error_numbers={contacts[0].phone: 21408})
    send_batch(app)
    [message] = rows()
    assert message.status == MessageStatus.FAILED and message.error_code == "21408"
    assert message.next_attempt_at is None
    assert not db.session.get(Contact, contacts[0].id).excluded


def _stale(app) -> timedelta:
    return timedelta(seconds=app.config["STALE_CLAIM_SECONDS"] + 1)


@pytest.mark.parametrize("accepted", [True, False])
def test_a_read_timeout_leaves_the_message_unknown_until_recovery_resolves_it(
    app, fake, make_send, accepted
):
    make_send(1)
    fake.configure(rate_timeout=1.0, timeout_accepts=1.0 if accepted else 0.0, timeout_seconds=3)
    send_batch(app)
    [message] = rows()
    assert message.status == MessageStatus.UNKNOWN
    fake.configure(rate_timeout=0.0)
    counts = recover_stale_claims(app, utcnow() + _stale(app))
    [message] = rows()
    if accepted:
        assert counts["recovered_sent"] == 1
        assert message.status == MessageStatus.SENT
        assert message.provider_sid == fake.messages()[0]["sid"]
        assert len(rows(Step.SECOND)) == 1  # its follow-up is created on recovery
    else:
        assert counts["recovered_requeued"] == 1
        assert message.status == MessageStatus.QUEUED
        send_batch(app)
        assert rows()[0].status == MessageStatus.SENT
    assert fake.stats()["accepted"] == 1 and fake.stats()["duplicates"] == 0


def test_a_crash_between_provider_acceptance_and_commit_is_resolved_without_a_duplicate(
    app, fake, make_send
):
    make_send(3)
    claimed = claim_batch(10)
    ready = screen_claimed(app, claimed, BatchSummary())
    transport = get_transport(app)
    # The worker hands every message to Twilio, then dies before writing anything.
    for item in ready:
        transport.send(OutboundItem(item.id, item.phone, item.body))
    assert {m.status for m in rows()} == {MessageStatus.SENDING}
    # Not stale yet: recovery leaves a live worker's claim alone.
    assert recover_stale_claims(app)["recovered_sent"] == 0
    counts = recover_stale_claims(app, utcnow() + _stale(app))
    assert counts["recovered_sent"] == 3
    sids = {r["sid"] for r in fake.messages()}
    assert {m.provider_sid for m in rows()} == sids
    assert claim_batch(10) == []  # nothing left to send again
    assert fake.stats()["accepted"] == 3 and fake.stats()["duplicates"] == 0


def test_when_twilio_cannot_tell_the_message_stays_unknown_and_needs_attention(
    app, fake, make_send
):
    broadcast, contacts, _ = make_send(1)
    claimed = claim_batch(10)
    screen_claimed(app, claimed, BatchSummary())
    # The same text already went to that number twice: which one is ours cannot be told.
    transport = get_transport(app)
    for _ in range(2):
        transport.send(OutboundItem(claimed[0].id, contacts[0].phone, claimed[0].body))
    counts = recover_stale_claims(app, utcnow() + _stale(app))
    assert counts["needs_attention"] == 1
    [message] = rows()
    assert message.status == MessageStatus.UNKNOWN
    assert message.error_message.startswith("Needs attention: 2 identical messages")
    # It is not asked about again at every tick.
    assert recover_stale_claims(app, utcnow() + _stale(app))["needs_attention"] == 0
