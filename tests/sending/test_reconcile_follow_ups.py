"""Reconciliation by SID resolves a first message left `sending` or `unknown` (the worker died
after Twilio accepted it): its status is applied and its follow-up made once, through the one
function every accepted first message goes through."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import MessageStatus, OutboundMessage, Step
from app.sending.reconcile import reconcile_statuses
from tests.factories import BroadcastFactory, OutboundMessageFactory
from tests.fakes.twilio import FakeTwilio


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=14) as server:
        yield server


@pytest.fixture
def app(engine_app, fake) -> Iterator:
    app = engine_app(
        **fake.app_settings(
            PUBLIC_BASE_URL="https://broadcaster.example.org", TWILIO_READS_PER_SECOND=1000.0
        )
    )
    with app.app_context():
        yield app


@pytest.mark.parametrize("left", [MessageStatus.SENDING, MessageStatus.UNKNOWN])
def test_a_first_message_left_open_is_resolved_by_sid_with_one_follow_up(app, fake, left):
    broadcast = BroadcastFactory(sending=True, second_message="Later?", delay_seconds=600)
    first = OutboundMessageFactory(sent=True, broadcast=broadcast)
    first.provider_sid = fake.add_message(first.contact.phone, first.body, "delivered")
    first.status, first.provider_status = left, None
    db.session.commit()

    assert reconcile_statuses(app)["updated"] == 1
    reconcile_statuses(app)  # a second run: nothing new

    db.session.expire_all()
    assert db.session.get(OutboundMessage, first.id).status == MessageStatus.DELIVERED
    follow_ups = db.session.scalars(
        sa.select(OutboundMessage).where(
            OutboundMessage.broadcast_id == broadcast.id, OutboundMessage.step == Step.SECOND
        )
    ).all()
    assert [f.status for f in follow_ups] == [MessageStatus.SCHEDULED]
    assert follow_ups[0].contact_id == first.contact_id
