"""Settings › API tokens: operators and admins make tokens (shown once, stored as a hash), see
their state and last use, and revoke them; a viewer may not; admins see everyone's."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.api.tokens import hash_token
from app.extensions import db
from app.models import ApiToken, AuditLog
from tests.support import by_id


def _secret(html: str) -> str:
    return re.search(r'id="settings-token-value">(bc_[^<]+)<', html).group(1)


def test_an_operator_makes_a_token_that_is_shown_once_and_works(operator_client, client):
    response = operator_client.post("/settings/api-tokens", data={"name": "CMS hook"})
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    secret = _secret(html)
    token = db.session.scalar(sa.select(ApiToken))
    assert token.token_hash == hash_token(secret) and token.prefix == secret[:10]
    assert response.headers["Cache-Control"] == "no-store"
    again = operator_client.get("/settings/api-tokens").get_data(as_text=True)
    assert secret not in again and f"{token.prefix}…" in again
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200


def test_a_nameless_token_or_a_past_expiry_is_refused_on_the_form(operator_client):
    missing = operator_client.post("/settings/api-tokens", data={"name": " "})
    assert missing.status_code == 422
    past = operator_client.post(
        "/settings/api-tokens", data={"name": "Old", "expires_on": "2020-01-01"}
    )
    assert past.status_code == 422
    assert "expiry date has passed" in past.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_revoking_a_token_stops_it_and_is_audited(operator_client, client):
    html = operator_client.post("/settings/api-tokens", data={"name": "Job"}).get_data(as_text=True)
    secret = _secret(html)
    token = db.session.scalar(sa.select(ApiToken))
    response = operator_client.post(f"/settings/api-tokens/{token.id}/revoke")
    assert response.status_code == 303
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401
    actions = set(db.session.scalars(sa.select(AuditLog.action)))
    assert {"api_token.create", "api_token.revoke"} <= actions
    page = operator_client.get("/settings/api-tokens").get_data(as_text=True)
    assert "revoked" in by_id(page, f"settings-token-{token.id}").text


def test_a_viewer_cannot_make_tokens(viewer_client):
    assert viewer_client.get("/settings/api-tokens").status_code == 403
    assert viewer_client.post("/settings/api-tokens", data={"name": "x"}).status_code == 403


def test_another_users_token_is_revoked_only_by_an_admin(make_user, client, admin):
    from app.api.tokens import create_token
    from tests.conftest import sign_in

    owner = make_user("operator", email="owner@example.org")
    other = make_user("operator", email="other@example.org")
    token, _ = create_token(owner, "Owner's")
    db.session.commit()
    sign_in(client, other)
    assert client.post(f"/settings/api-tokens/{token.id}/revoke").status_code == 403
    client.post("/auth/logout")
    sign_in(client, admin)
    page = client.get("/settings/api-tokens").get_data(as_text=True)
    assert "owner@example.org" in page
    assert client.post(f"/settings/api-tokens/{token.id}/revoke").status_code == 303
