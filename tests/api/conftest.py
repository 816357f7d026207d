"""API fixtures: a real token for a user of each role, and a client that sends it."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask.testing import FlaskClient

from app.api.tokens import create_token
from app.extensions import db
from app.models import User


class TokenClient:
    """The test client with `Authorization: Bearer <token>` on every request."""

    def __init__(self, client: FlaskClient, secret: str) -> None:
        self.client = client
        self.secret = secret

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}", **(headers or {})}

    def open(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs):
        return self.client.open(url, method=method, headers=self._headers(headers), **kwargs)

    def get(self, url: str, **kwargs):
        return self.open("GET", url, **kwargs)

    def post(self, url: str, **kwargs):
        return self.open("POST", url, **kwargs)

    def patch(self, url: str, **kwargs):
        return self.open("PATCH", url, **kwargs)

    def put(self, url: str, **kwargs):
        return self.open("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs):
        return self.open("DELETE", url, **kwargs)


@pytest.fixture
def make_token():
    def make(user: User, name: str = "CMS hook", expires_at: datetime | None = None) -> str:
        if not user.has_role("operator"):
            # Viewers cannot make tokens on the page; a token whose owner was demoted acts
            # as a viewer: made here as an operator, then demoted.
            role = user.role
            user.role = "operator"
            _, secret = create_token(user, name, expires_at=expires_at)
            user.role = role
        else:
            _, secret = create_token(user, name, expires_at=expires_at)
        db.session.commit()
        return secret

    return make


@pytest.fixture
def operator_api(client, operator, make_token) -> TokenClient:
    return TokenClient(client, make_token(operator))


@pytest.fixture
def admin_api(client, admin, make_token) -> TokenClient:
    return TokenClient(client, make_token(admin))


@pytest.fixture
def viewer_api(client, viewer, make_token) -> TokenClient:
    return TokenClient(client, make_token(viewer))
