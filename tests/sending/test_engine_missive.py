"""The missive transport: drafts sent as SMS through one session, Missive's limits respected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import MessageStatus, MissiveConversation, OutboundMessage, Step, utcnow
from app.sending.engine import BatchSummary, claim_batch, screen_claimed, send_batch
from app.sending.recovery import recover_stale_claims
from app.sending.transports import OutboundItem, get_transport
from tests.fakes.missive import FakeMissive

FROM = "+13135558888"


@pytest.fixture
def fake() -> Iterator[FakeMissive]:
    with FakeMissive(seed=5, retry_after_seconds=1) as server:
        yield server


@pytest.fixture
def app(engine_app, fake):
    app = engine_app(
        TRANSPORT="missive",
        MISSIVE_API_TOKEN=fake.token,
        MISSIVE_API_BASE_URL=fake.url + "/v1",
        MISSIVE_FROM_NUMBER=FROM,
        MISSIVE_ORGANIZATION_ID="org-1",
    )
    with app.app_context():
        yield app


def first_messages() -> list[OutboundMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.step == Step.FIRST).order_by("id")
        )
    )


def test_each_message_is_a_sent_draft_from_our_number_with_its_conversation(app, fake, make_send):
    broadcast, contacts, _ = make_send(3)
    assert send_batch(app).counts["accepted"] == 3
    drafts = {d["id"]: d for d in fake.messages()}
    for message in first_messages():
        draft = drafts[message.provider_sid]
        assert message.status == MessageStatus.SENT and message.transport == "missive"
        assert message.missive_draft_id == draft["id"]
        assert message.missive_conversation_id == draft["conversation"]
        assert draft["to"] == message.contact.phone and draft["body"] == message.body
        assert draft["from_field"] == {"phone_number": FROM, "type": "twilio"}
        assert draft["send"] is True and draft["organization"] == "org-1"
    assert fake.stats()["duplicates"] == 0


def test_never_more_than_five_requests_at_once(app, fake, make_send):
    fake.configure(latency_ms=150)
    make_send(12)
    send_batch(app)
    assert {m.status for m in first_messages()} == {MessageStatus.SENT}
    stats = fake.stats()
    assert 1 < stats["max_concurrency_seen"] <= 5
    assert stats["rate_limited"] == 0
    assert stats["accepted"] == 12 and stats["duplicates"] == 0


def test_a_429_is_waited_out_as_retry_after_says(app, fake):
    fake.configure(rate_429=1.0, retry_after_seconds=2)
    waits = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        fake.configure(rate_429=0.0)  # Missive lets us through after the wait

    client = get_transport(app).client
    client.sleep = sleep
    message = client.send_sms("+13135550101", "Hello")
    assert waits == [2.0]
    assert message.sid == fake.messages()[0]["id"]


def test_a_429_that_does_not_end_becomes_the_engines_retry(app, fake, make_send):
    fake.configure(rate_429=1.0, retry_after_seconds=0)
    make_send(1)
    send_batch(app)
    [message] = first_messages()
    assert message.status == MessageStatus.RETRYING and message.error_code == "429"
    assert fake.stats()["rate_limited"] == 4  # the first call and three waits


def test_a_lost_answer_is_found_in_the_contacts_conversation(app, fake, make_send):
    broadcast, contacts, _ = make_send(1)
    # The contact's conversation is mirrored (issue 6 keeps this table), as after any reply.
    transport = get_transport(app)
    [claimed] = claim_batch(5)
    screen_claimed(app, [claimed], BatchSummary())
    accepted = transport.send(OutboundItem(claimed.id, contacts[0].phone, claimed.body))
    db.session.add(
        MissiveConversation(
            missive_id=accepted.conversation_id, contact_id=contacts[0].id, phone=contacts[0].phone
        )
    )
    db.session.commit()
    later = utcnow() + timedelta(seconds=app.config["STALE_CLAIM_SECONDS"] + 1)
    assert recover_stale_claims(app, later)["recovered_sent"] == 1
    [message] = first_messages()
    assert message.status == MessageStatus.SENT and message.provider_sid == accepted.provider_sid
    assert fake.stats()["accepted"] == 1


def test_without_a_known_conversation_the_message_needs_attention(app, fake, make_send):
    make_send(1)
    [claimed] = claim_batch(5)
    later = utcnow() + timedelta(seconds=app.config["STALE_CLAIM_SECONDS"] + 1)
    assert recover_stale_claims(app, later)["needs_attention"] == 1
    [message] = first_messages()
    assert message.status == MessageStatus.UNKNOWN
    assert "no Missive conversation" in message.error_message
