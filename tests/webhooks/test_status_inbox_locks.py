"""The bulk applier never waits on someone else's transaction: a message row a worker holds
(recording its results) keeps its callbacks pending, later ones of it included, for the next
pass, on a committed database with two real connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.extensions import db
from app.models import MessageStatus, OutboundMessage
from app.sending.status import StatusUpdate
from app.webhooks.inbox import accept_status_callback, apply_pending_callbacks, pending_count
from tests.factories import OutboundMessageFactory
from tests.support import make_test_config, migrated_scratch_database

pytestmark = pytest.mark.slow


@pytest.fixture
def committed() -> Iterator[Flask]:
    with migrated_scratch_database("inbox_locks") as url:
        app = create_app(make_test_config(database_url=url))
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()


def test_callbacks_of_a_locked_message_wait_for_the_next_pass_in_order(committed):
    held, free = OutboundMessageFactory.create_batch(2, sent=True, provider_status="queued")
    db.session.commit()
    held_id, free_id = held.id, free.id
    for message_id, status in (
        (held_id, "failed"),
        (free_id, "delivered"),
        (held_id, "undelivered"),
    ):
        accept_status_callback(StatusUpdate(status, message_id=message_id), payload="")
    db.session.commit()

    worker = db.engine.connect()  # a worker's transaction holding one message row
    transaction = worker.begin()
    worker.execute(
        sa.select(OutboundMessage.id).where(OutboundMessage.id == held_id).with_for_update()
    )
    try:
        counts = apply_pending_callbacks()  # returns at once: nothing waits on the lock
        assert counts == {"applied": 1, "unchanged": 0, "busy": 2, "waiting": 0}
        db.session.expire_all()
        assert db.session.get(OutboundMessage, free_id).status == MessageStatus.DELIVERED
        assert db.session.get(OutboundMessage, held_id).status == MessageStatus.SENT
        assert pending_count() == 2
    finally:
        transaction.rollback()
        worker.close()

    assert apply_pending_callbacks()["applied"] == 1
    db.session.expire_all()
    # The first final status to arrive wins; the later one changed nothing.
    message = db.session.get(OutboundMessage, held_id)
    assert message.status == MessageStatus.FAILED and pending_count() == 0
