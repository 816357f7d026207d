"""Inbound fixtures: a contact, and a sent broadcast first message with its scheduled follow-up."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Contact, utcnow
from tests.factories import ContactFactory, sent_with_follow_up


@pytest.fixture
def contact() -> Contact:
    contact = ContactFactory(phone="+13135550150")
    db.session.commit()
    return contact


@pytest.fixture
def sent(contact):
    """(first, follow-up) of a broadcast whose first message went out 5 minutes ago."""
    first, follow_up = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    return first, follow_up
