"""Security headers on every response; error pages that say what to fix and never leak a 500."""

from __future__ import annotations

from tests.support import HX


def test_pages_carry_the_security_headers(viewer_client):
    response = viewer_client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_login_page_has_them_too(client):
    response = client.get("/auth/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/auth/login").headers
    secure = client.get("/auth/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_session_cookie_is_http_only_and_same_site(client, viewer):
    from tests.conftest import sign_in

    cookie = next(
        c for c in sign_in(client, viewer).headers.getlist("Set-Cookie") if c.startswith("session=")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_unknown_page_is_a_friendly_404(viewer_client):
    response = viewer_client.get("/no/such/page")
    assert response.status_code == 404
    assert b"That page does not exist." in response.data


def test_htmx_errors_are_retargeted_into_the_flash_region(viewer_client):
    response = viewer_client.get("/settings/users", headers=HX)
    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#flash"
    assert b"flash--error" in response.data and b"<html" not in response.data


def test_an_unexpected_error_is_a_500_page_that_says_nothing_was_saved(make_user, make_app):
    from app.models import Role
    from tests.conftest import sign_in

    app = make_app()

    @app.get("/_boom")
    def boom():
        raise RuntimeError("kaboom")

    client = app.test_client()
    sign_in(client, make_user(Role.VIEWER))
    response = client.get("/_boom")
    assert response.status_code == 500
    assert b"Nothing was saved" in response.data and b"kaboom" not in response.data


def test_oversized_request_gets_413_with_a_message(make_app):
    client = make_app(MAX_BODY_KB=1).test_client()
    response = client.post("/auth/login", data={"email": "a@example.org", "x": "y" * 4096})
    assert response.status_code == 413
    assert b"Too large" in response.data
    assert b"That request is too large: the limit is 1 KB." in response.data
