"""Each role against each operation of the document: without a token every one is a 401;
a viewer's token reads (every GET) and is refused every change (403); operators and admins
are never refused for their role."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from tests.api.conftest import TokenClient
from tests.factories import BroadcastFactory, CampaignFactory, ContactFactory, SegmentFactory

PROBLEM = "application/problem+json"


def _operations(client) -> list[tuple[str, str, str]]:
    document = client.get("/api/openapi.json").get_json()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            url = re.sub(r"\{[^}]+\}", "1", path)
            found.append((method.upper(), url, operation["operationId"]))
    return found


@pytest.fixture
def data():
    SegmentFactory(id=1)
    ContactFactory(id=1)
    BroadcastFactory()
    CampaignFactory(id=1)
    db.session.commit()


def test_every_operation_is_documented_and_needs_a_token(app, client, data):
    app.config["API_AUTH_FAILURE_LIMIT"] = "1000 per minute"  # each refusal counts
    operations = _operations(client)
    assert len(operations) >= 30
    for method, url, name in operations:
        response = client.open(url, method=method, json={})
        assert response.status_code == 401, (name, response.status_code)
        assert response.content_type == PROBLEM
    app.config["API_AUTH_FAILURE_LIMIT"] = "20 per 5 minutes"


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_each_role_against_each_operation(request, client, make_token, data, role):
    user = request.getfixturevalue(role)
    api = TokenClient(client, make_token(user))
    for method, url, name in _operations(client):
        response = api.open(method, url, json={})
        assert response.status_code not in (401, 500), (role, name, response.status_code)
        if role == "viewer" and method != "GET":
            assert response.status_code == 403, (name, response.status_code)
            assert "operator role" in response.get_json()["detail"]
        else:
            assert response.status_code != 403, (role, name, response.get_json())
