"""A first message's follow-up exists exactly once, scheduled at acceptance + delay, whichever
path made the first message `sent`: the worker's results, recovery, a status callback that beat
the worker, a person's "It was sent" under Needs attention (SPEC 6.3, 6.4)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Campaign, MessageStatus, OutboundMessage, Step, utcnow
from app.sending.attention import resolve_attention
from app.sending.engine import BatchSummary, claim_batch, record_results, screen_claimed, send_batch
from app.sending.outbound import after_first_accepted, create_outbound
from app.sending.policy import Outcome, SendResult
from app.sending.recovery import recover_stale_claims
from app.sending.transports import OutboundItem, get_transport
from app.webhooks.inbox import apply_pending_callbacks
from tests.factories import ContactFactory, InboundMessageFactory, UserFactory
from tests.fakes.twilio import FakeTwilio
from tests.webhooks.signing import HOOK_SETTINGS, TWILIO_TOKEN, post_twilio

STATUS = "/webhooks/twilio/status"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=11, auth_token=TWILIO_TOKEN) as server:
        yield server


@pytest.fixture
def app(engine_app, fake):
    """The twilio transport against the fake, and signed webhooks on the same app."""
    app = engine_app(
        # The fake's auth token wins over the hooks' one: the fake signs its callbacks with it.
        **{**HOOK_SETTINGS, **fake.app_settings()}
    )
    with app.app_context():
        yield app


def follow_ups() -> list[OutboundMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.step == Step.SECOND).order_by("id")
        )
    )


def first(message_id: int) -> OutboundMessage:
    db.session.expire_all()
    return db.session.get(OutboundMessage, message_id)


def callback(app, message_id: int, status: str, sid: str, **extra: str):
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32, **extra}
    response = post_twilio(app.test_client(), f"{STATUS}?m={message_id}", params)
    assert response.status_code == 204
    apply_pending_callbacks()  # the worker's bulk pass, a moment later
    return response


def gap_seconds(follow_up: OutboundMessage, message: OutboundMessage) -> float:
    return (follow_up.scheduled_for - message.sent_at).total_seconds()


def test_the_worker_creates_each_follow_up_once_at_acceptance_plus_delay(app, make_send):
    broadcast, contacts, firsts = make_send(3, delay_seconds=900)
    send_batch(app)
    made = follow_ups()
    assert len(made) == 3 and {m.status for m in made} == {MessageStatus.SCHEDULED}
    assert {m.contact_id for m in made} == {c.id for c in contacts}
    for follow_up in made:
        message = next(m for m in firsts if m.contact_id == follow_up.contact_id)
        assert gap_seconds(follow_up, first(message.id)) == pytest.approx(900, abs=1)
        assert follow_up.body == broadcast.second_message
    # Asked again (another path, a retried job): nothing new.
    assert after_first_accepted([m.id for m in firsts], utcnow()) == []
    db.session.commit()
    assert len(follow_ups()) == 3


def test_recovery_creates_the_follow_up_of_a_first_message_it_finds_at_the_provider(
    app, fake, make_send
):
    make_send(2)
    ready = screen_claimed(app, claim_batch(10), BatchSummary())
    transport = get_transport(app)
    for item in ready:  # handed to Twilio, then the worker died before recording anything
        transport.send(OutboundItem(item.id, item.phone, item.body))
    assert follow_ups() == []
    later = utcnow() + timedelta(seconds=app.config["STALE_CLAIM_SECONDS"] + 1)
    assert recover_stale_claims(app, later)["recovered_sent"] == 2
    made = follow_ups()
    assert len(made) == 2
    for follow_up in made:
        message = db.session.scalar(
            sa.select(OutboundMessage).where(
                OutboundMessage.contact_id == follow_up.contact_id,
                OutboundMessage.step == Step.FIRST,
            )
        )
        assert gap_seconds(follow_up, message) == pytest.approx(600, abs=1)
    assert recover_stale_claims(app, later)["recovered_sent"] == 0
    assert len(follow_ups()) == 2 and fake.stats()["duplicates"] == 0


@pytest.mark.parametrize("status", ["sent", "delivered", "undelivered"])
def test_a_signed_callback_that_beats_the_worker_creates_the_follow_up_once(app, make_send, status):
    broadcast, contacts, _ = make_send(1, delay_seconds=1200)
    [claimed] = claim_batch(10)
    sid = "SM" + "c" * 32
    callback(app, claimed.id, status, sid, **({"ErrorCode": "30003"} if status != "sent" else {}))
    message = first(claimed.id)
    assert message.status == status and message.provider_sid == sid
    [follow_up] = follow_ups()
    assert follow_up.status == MessageStatus.SCHEDULED and follow_up.contact_id == contacts[0].id
    assert gap_seconds(follow_up, message) == pytest.approx(1200, abs=1)
    scheduled_for = follow_up.scheduled_for

    # The late callbacks, then the worker's own record of the same acceptance: still one.
    callback(app, claimed.id, "delivered", sid)
    result = SendResult(Outcome.ACCEPTED, provider_sid=sid, provider_status="queued")
    assert record_results(app, get_transport(app), [(claimed, result)]) == [claimed.id]
    [again] = follow_ups()
    assert again.id == follow_up.id and again.scheduled_for == scheduled_for
    assert first(claimed.id).status == (status if status != "sent" else "delivered")
    # The tick finds nothing stale to look up.
    later = utcnow() + timedelta(seconds=app.config["STALE_CLAIM_SECONDS"] + 1)
    assert recover_stale_claims(app, later) == {
        "recovered_sent": 0,
        "recovered_requeued": 0,
        "needs_attention": 0,
    }
    assert len(follow_ups()) == 1


def test_a_callback_resolving_an_unknown_first_message_creates_its_follow_up(app, make_send):
    make_send(1)
    [claimed] = claim_batch(10)
    timeout = SendResult(Outcome.UNKNOWN, error_message="read timeout")
    record_results(app, get_transport(app), [(claimed, timeout)])
    assert first(claimed.id).status == MessageStatus.UNKNOWN and follow_ups() == []
    callback(app, claimed.id, "sent", "SM" + "d" * 32)
    message = first(claimed.id)
    assert message.status == MessageStatus.SENT and message.error_message is None
    assert len(follow_ups()) == 1


def test_a_callback_for_a_claimed_follow_up_creates_nothing_more(app, make_send):
    broadcast, contacts, _ = make_send(1)
    send_batch(app)
    [follow_up] = follow_ups()
    follow_up.status, follow_up.scheduled_for = MessageStatus.QUEUED, None
    db.session.commit()
    [claimed] = claim_batch(10)
    assert claimed.step == Step.SECOND
    callback(app, claimed.id, "sent", "SM" + "e" * 32)
    assert [m.status for m in follow_ups()] == [MessageStatus.SENT]


def test_a_send_without_a_second_message_gets_no_follow_up_from_a_callback(app, make_send):
    make_send(1, second_message=None)
    [claimed] = claim_batch(10)
    callback(app, claimed.id, "sent", "SM" + "f" * 32)
    assert first(claimed.id).status == MessageStatus.SENT and follow_ups() == []


def test_it_was_sent_under_needs_attention_creates_the_follow_up_from_the_claim_time(
    app, make_send
):
    make_send(2, delay_seconds=300)
    claimed = claim_batch(10)
    unknown = SendResult(Outcome.UNKNOWN, error_message="read timeout")
    record_results(app, get_transport(app), [(c, unknown) for c in claimed])
    person = UserFactory()
    sent_one, again_one = (first(c.id) for c in claimed)
    resolve_attention(sent_one.id, was_sent=True, user=person)
    resolve_attention(again_one.id, was_sent=False, user=person)
    db.session.commit()
    [follow_up] = follow_ups()
    message = first(sent_one.id)
    assert follow_up.contact_id == message.contact_id
    assert message.status == MessageStatus.SENT and message.sent_at is not None
    assert gap_seconds(follow_up, message) == pytest.approx(300, abs=1)
    assert first(again_one.id).status == MessageStatus.QUEUED


def test_someone_who_replied_before_the_callback_gets_the_follow_up_cancelled_by_it(app, make_send):
    _, contacts, _ = make_send(1)
    [claimed] = claim_batch(10)
    # The worker died after Twilio accepted; the person answered before the receipt came.
    db.session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.id == claimed.id)
        .values(sent_at=utcnow() - timedelta(minutes=2))
    )
    InboundMessageFactory(
        contact=contacts[0], phone=contacts[0].phone, received_at=utcnow() - timedelta(minutes=1)
    )
    db.session.commit()
    callback(app, claimed.id, "delivered", "SM" + "9" * 32)
    [follow_up] = follow_ups()
    assert follow_up.status == MessageStatus.CANCELLED and follow_up.cancel_reason == "replied"


def test_a_campaigns_follow_up_uses_the_campaigns_text_and_delay(app):
    campaign = Campaign(first_message="Vote", second_message="Reminder", delay_seconds=120)
    db.session.add(campaign)
    contact = ContactFactory()
    db.session.flush()
    create_outbound(campaign, [contact.id], "Vote")
    db.session.commit()
    [claimed] = claim_batch(10)
    callback(app, claimed.id, "sent", "SM" + "8" * 32)
    [follow_up] = follow_ups()
    assert follow_up.campaign_id == campaign.id and follow_up.broadcast_id is None
    assert follow_up.body == "Reminder"
    assert gap_seconds(follow_up, first(claimed.id)) == pytest.approx(120, abs=1)
