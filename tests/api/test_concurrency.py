"""Two requests with one Idempotency-Key at the same moment, on a committed database (real
concurrent transactions): the operation runs once and both get its answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.api.tokens import create_token
from app.extensions import db
from app.models import Broadcast, BroadcastSegment, BroadcastStatus, OutboundMessage, Role
from tests.factories import BroadcastFactory, ContactFactory, SegmentFactory, UserFactory
from tests.support import make_test_config, migrated_scratch_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scratch_db() -> Iterator[str]:
    with migrated_scratch_database("api_idempotency") as url:
        yield url


@pytest.fixture
def live(scratch_db) -> Iterator[Flask]:
    app = create_app(make_test_config(database_url=scratch_db, QUIET_HOURS=None))
    with app.app_context():
        db.session.execute(
            sa.text("TRUNCATE contacts, broadcasts, segments, users, api_idempotency_keys CASCADE")
        )
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def _together(app: Flask, requests: list[dict]) -> list:
    """Send the requests from threads released at one instant; their responses in order."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(index: int, kwargs: dict) -> None:
        client = app.test_client()
        barrier.wait()
        results[index] = client.open(**kwargs)

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_concurrent_send_nows_with_one_key_start_one_broadcast(live):
    user = UserFactory(role=Role.OPERATOR, email="ops@example.org")
    segment = SegmentFactory(rule={"all": []})
    ContactFactory.create_batch(4)
    upcoming = BroadcastFactory()
    db.session.flush()
    upcoming.segment_links.append(BroadcastSegment(segment_id=segment.id, ratio=100))
    _, secret = create_token(user, "spreadsheet job")
    db.session.commit()
    request = {
        "path": "/api/v1/broadcasts/upcoming/send-now",
        "method": "POST",
        "headers": {"Authorization": f"Bearer {secret}", "Idempotency-Key": "run-2026-12-01"},
    }
    first, second = _together(live, [request, request])
    assert first.status_code == second.status_code == 201, (first.json, second.json)
    assert first.get_json() == second.get_json()
    replayed = [r.headers.get("Idempotent-Replayed") for r in (first, second)]
    assert sorted(replayed, key=str) == sorted([None, "true"], key=str)
    db.session.expire_all()
    started = db.session.scalars(
        sa.select(Broadcast).where(Broadcast.status != BroadcastStatus.UPCOMING)
    ).all()
    assert len(started) == 1
    messages = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage))
    assert messages == 4
