"""Engine fixtures: an app with quiet hours off and a fast pace, and outbound rows to send."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from app.extensions import db
from tests.factories import BroadcastFactory, ContactFactory, OutboundMessageFactory

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


@pytest.fixture
def make_send():
    """`make_send(n, **broadcast_fields)` → (broadcast, contacts, first-step rows), committed:
    the broadcast's `queued` first message to each of `n` new contacts."""

    def make(n: int = 3, **fields):
        broadcast = BroadcastFactory(**fields)
        contacts = ContactFactory.create_batch(n)
        rows = [OutboundMessageFactory(broadcast=broadcast, contact=c) for c in contacts]
        db.session.commit()
        return broadcast, contacts, rows

    return make
