"""Tokens authenticate the API (never the session), act with their owner's role, and stop when
revoked, expired or their owner is deactivated; failed attempts and each token are rate limited."""

from __future__ import annotations

from datetime import timedelta

from app.api.tokens import hash_token, revoke_token
from app.extensions import db
from app.models import ApiToken, AuditLog, utcnow
from tests.api.conftest import TokenClient
from tests.conftest import sign_in

PROBLEM = "application/problem+json"


def test_me_answers_with_the_token_owner_and_records_its_use(operator_api, operator):
    response = operator_api.get("/api/v1/me")
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == operator.email
    assert body["role"] == "operator"
    assert body["token"]["name"] == "CMS hook"
    assert body["token"]["prefix"].startswith("bc_")
    token = db.session.get(ApiToken, body["token"]["id"])
    assert token.last_used_at is not None
    assert response.headers["Cache-Control"] == "no-store"


def test_the_token_is_stored_as_a_hash_only(operator_api, operator):
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == operator.id))
    assert token.token_hash == hash_token(operator_api.secret)
    assert operator_api.secret not in token.token_hash
    assert token.prefix == operator_api.secret[:10]


def test_a_session_cookie_does_not_authenticate_the_api(client, operator):
    assert sign_in(client, operator).status_code == 302
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.content_type == PROBLEM
    assert "session cookie does not authenticate" in response.get_json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_or_malformed_token_is_refused_as_problem_json(client):
    for header in ("Bearer bc_nope", "Bearer", "Basic abc", "bc_raw"):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.content_type == PROBLEM
        assert response.get_json()["status"] == 401


def test_a_revoked_token_stops_at_once(operator_api, operator):
    assert operator_api.get("/api/v1/me").status_code == 200
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == operator.id))
    revoke_token(token, user=operator)
    db.session.commit()
    response = operator_api.get("/api/v1/me")
    assert response.status_code == 401
    assert "was revoked" in response.get_json()["detail"]


def test_an_expired_token_is_refused(client, operator, make_token):
    secret = make_token(operator, expires_at=utcnow() + timedelta(minutes=5))
    api = TokenClient(client, secret)
    assert api.get("/api/v1/me").status_code == 200
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == operator.id))
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = api.get("/api/v1/me")
    assert response.status_code == 401
    assert "expired" in response.get_json()["detail"]


def test_a_deactivated_owner_stops_the_token(operator_api, operator):
    operator.active = False
    db.session.commit()
    response = operator_api.get("/api/v1/me")
    assert response.status_code == 401
    assert "deactivated" in response.get_json()["detail"]


def test_failed_authentications_are_rate_limited_with_retry_after(app, client, operator_api):
    app.config["API_AUTH_FAILURE_LIMIT"] = "3 per minute"
    try:
        codes = [
            client.get("/api/v1/me", headers={"Authorization": "Bearer bc_wrong"}).status_code
            for _ in range(5)
        ]
        assert codes[:3] == [401, 401, 401]
        limited = client.get("/api/v1/me", headers={"Authorization": "Bearer bc_wrong"})
        assert limited.status_code == 429
        assert limited.content_type == PROBLEM
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # A valid token from the same address is not locked out by someone else's failures.
        assert operator_api.get("/api/v1/me").status_code == 200
    finally:
        app.config["API_AUTH_FAILURE_LIMIT"] = "20 per 5 minutes"


def test_each_token_has_a_request_rate_limit(app, operator_api):
    app.config["API_RATE_LIMIT"] = "4 per minute"
    try:
        codes = [operator_api.get("/api/v1/me").status_code for _ in range(6)]
        assert codes[:4] == [200] * 4
        assert codes[4:] == [429, 429]
        limited = operator_api.get("/api/v1/me")
        assert int(limited.headers["Retry-After"]) >= 1
        assert "too many requests" in limited.get_json()["detail"]
    finally:
        app.config["API_RATE_LIMIT"] = "120 per minute"


def test_errors_under_api_are_never_html(operator_api):
    missing = operator_api.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.content_type == PROBLEM
    wrong_method = operator_api.open("DELETE", "/api/v1/me")
    assert wrong_method.status_code == 405 and wrong_method.content_type == PROBLEM


def test_token_creation_and_revocation_are_audited(operator_api, operator):
    actions = set(db.session.scalars(db.select(AuditLog.action)))
    assert "api_token.create" in actions


def test_the_openapi_document_and_its_page_need_no_token(client):
    document = client.get("/api/openapi.json")
    assert document.status_code == 200
    assert document.get_json()["openapi"] == "3.1.0"
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"swagger-ui-bundle.js" in page.data
    assert "<script>" not in page.get_data(as_text=True)  # no inline script
    assert "'unsafe-inline'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]


def test_csrf_does_not_apply_to_token_requests(csrf_enabled, operator_api):
    etag = operator_api.get("/api/v1/broadcasts/upcoming").headers["ETag"]
    response = operator_api.patch(
        "/api/v1/broadcasts/upcoming", json={"first_message": "No CSRF"}, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.get_json()


def test_with_csrf_on_a_session_cookie_still_gets_no_access(csrf_enabled, client, operator):
    assert sign_in(client, operator).status_code in (302, 400)
    response = client.post("/api/v1/broadcasts/upcoming/send-now")
    assert response.status_code == 401
    assert response.content_type == PROBLEM
