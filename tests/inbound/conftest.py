"""Inbound fixtures: a sent broadcast first message with its scheduled follow-up, per contact."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastStatus,
    Contact,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from tests.factories import BroadcastFactory, ContactFactory


def sent_broadcast() -> Broadcast:
    """A broadcast already started (only one may be upcoming at a time)."""
    return BroadcastFactory(status=BroadcastStatus.SENDING)


def sent_pair(
    contact: Contact,
    send: Broadcast,
    *,
    sent_at: datetime,
    follow_up_in: timedelta = timedelta(minutes=10),
) -> tuple[OutboundMessage, OutboundMessage]:
    first = OutboundMessage(
        broadcast=send,
        contact=contact,
        step=Step.FIRST,
        body=send.first_message,
        status=MessageStatus.SENT,
        sent_at=sent_at,
        provider_sid=f"SMfirst{contact.id}x{send.id}",
    )
    second = OutboundMessage(
        broadcast=send,
        contact=contact,
        step=Step.SECOND,
        body=send.second_message,
        status=MessageStatus.SCHEDULED,
        scheduled_for=sent_at + follow_up_in,
    )
    db.session.add_all([first, second])
    db.session.commit()
    return first, second


@pytest.fixture
def contact() -> Contact:
    contact = ContactFactory(phone="+13135550150")
    db.session.commit()
    return contact


@pytest.fixture
def sent(contact):
    """(first, follow-up) of a broadcast whose first message went out 5 minutes ago."""
    return sent_pair(contact, sent_broadcast(), sent_at=utcnow() - timedelta(minutes=5))
