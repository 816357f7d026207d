"""Schemathesis against the served OpenAPI document, with a real admin token: every operation,
no 5xx, and every answer (status, content type, headers, body) as the document says.

Nothing reaches a provider: send now and test send only write rows and queue jobs (no worker
runs here), on the simulator transport."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.extensions import db
from app.models import BroadcastSegment
from tests.factories import BroadcastFactory, CampaignFactory, ContactFactory, SegmentFactory
from tests.support import make_test_config

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _document() -> dict:
    """The document as served (it needs no database: it is generated from the views)."""
    return create_app(make_test_config()).test_client().get("/api/openapi.json").get_json()


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture
def wsgi_app(app):
    """The app under test (a name of its own: schemathesis's parametrization must not touch
    the session's `app` fixture)."""
    return app


@pytest.fixture
def secret(app, admin, make_token):
    app.config["API_RATE_LIMIT"] = "100000 per minute"
    segment = SegmentFactory(id=1)
    contact = ContactFactory(id=1)
    upcoming = BroadcastFactory()
    db.session.flush()
    upcoming.segment_links.append(BroadcastSegment(segment_id=segment.id, ratio=50))
    BroadcastFactory(sending=True)
    CampaignFactory(id=1)
    assert contact.id == 1
    db.session.commit()
    yield make_token(admin)
    app.config["API_RATE_LIMIT"] = "120 per minute"


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented(case, wsgi_app, secret):
    case.call_and_validate(
        app=wsgi_app, headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS
    )
