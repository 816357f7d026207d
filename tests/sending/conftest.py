"""Engine fixtures: an app with quiet hours off and a fast pace, and outbound rows to send."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from app.extensions import db
from app.models import Broadcast, Contact, OutboundMessage
from app.sending.outbound import create_outbound
from tests.factories import BroadcastFactory, ContactFactory

ENGINE_SETTINGS = {
    "QUIET_HOURS": None,
    "SEND_RATE_MPS": 1000.0,
    "RETRY_BACKOFF_SECONDS": (60, 300, 900),
    "PROVIDER_READ_TIMEOUT": 1.0,
}


@pytest.fixture
def engine_app(make_app) -> Callable[..., Flask]:
    """`engine_app(**settings)` → an app on the test's connection, in its own context."""

    def make(**overrides) -> Flask:
        return make_app(**{**ENGINE_SETTINGS, **overrides})

    return make


@pytest.fixture
def sim_app(engine_app) -> Iterator[Flask]:
    app = engine_app()
    with app.app_context():
        yield app


def outbound_for(
    broadcast: Broadcast, contacts: list[Contact], body: str | None = None
) -> list[OutboundMessage]:
    create_outbound(broadcast, [c.id for c in contacts], body or broadcast.first_message)
    db.session.commit()
    return list(
        db.session.scalars(
            db.select(OutboundMessage)
            .where(OutboundMessage.broadcast_id == broadcast.id)
            .order_by(OutboundMessage.id)
        )
    )


@pytest.fixture
def make_send():
    """`make_send(n, **broadcast_fields)` → (broadcast, contacts, first-step rows), committed."""

    def make(n: int = 3, **fields):
        broadcast = BroadcastFactory(**fields)
        contacts = ContactFactory.create_batch(n)
        return broadcast, contacts, outbound_for(broadcast, contacts)

    return make
