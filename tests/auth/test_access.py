"""Every route needs a signed-in user, except sign-in, /healthz, static files and webhooks."""

from __future__ import annotations

import pytest
from flask import Flask

from app.models import Role
from app.security import require_role
from tests.support import HX

PUBLIC_ENDPOINTS = {
    "auth.login",
    "auth.create_session",
    "sidebar.login",  # the Missive sidebar's own sign-in, inside its frame
    "sidebar.create_session",
    "health.healthz",
    "static",
}


def _sign_in_for(url: str) -> str:
    """The dashboard's sign-in, or inside Missive's frame the sidebar's own."""
    return "/sidebar/login?next=" if url.startswith("/sidebar/") else "/auth/login?next="


def _sample_url(app: Flask, rule) -> str:
    values = {}
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__
        values[arg] = 1 if "Integer" in converter else "x"
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def _protected_rules(app: Flask):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith(("webhooks.", "api.")):
            continue
        yield rule


def test_only_the_known_public_endpoints_are_public(app):
    public = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "is_public", False)
    }
    webhooks = {endpoint for endpoint in public if endpoint.startswith("webhooks.")}
    # The API's views skip the sign-in gate: its blueprint checks a token instead (every one
    # answers 401 without it: tests/api/test_operations.py).
    api = {endpoint for endpoint in public if endpoint.startswith("api.")}
    assert public - {"static"} - webhooks - api <= PUBLIC_ENDPOINTS
    # Signed webhooks (checked in tests/webhooks): public, every one signature-checked.
    assert webhooks == {
        "webhooks.twilio_inbound",
        "webhooks.twilio_status",
        "webhooks.missive",
        "webhooks.missive_admin_action",
    }
    assert {"auth.login", "health.healthz"} <= public


def test_every_url_rule_redirects_to_sign_in_without_login(app, client):
    checked = 0
    for rule in _protected_rules(app):
        url = _sample_url(app, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            assert response.status_code == 302, (method, url, response.status_code)
            assert response.headers["Location"].startswith(_sign_in_for(url)), url
            checked += 1
    assert checked >= 12  # every feature area has at least its index page


def test_every_url_rule_answers_htmx_without_login_with_401_and_hx_redirect(app, client):
    for rule in _protected_rules(app):
        url = _sample_url(app, rule)
        response = (
            client.get(url, headers=HX) if "GET" in rule.methods else (client.post(url, headers=HX))
        )
        assert response.status_code == 401, url
        assert response.headers["HX-Redirect"].startswith(_sign_in_for(url)), url


def test_public_pages_answer_without_login(client):
    assert client.get("/auth/login").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/static/css/app.css").status_code == 200


@pytest.mark.parametrize(
    ("role", "users_page", "settings_page"),
    [(Role.VIEWER, 403, 200), (Role.OPERATOR, 403, 200), (Role.ADMIN, 200, 200)],
)
def test_user_management_is_for_admins_only(client, make_user, role, users_page, settings_page):
    from tests.conftest import sign_in

    user = make_user(role)
    sign_in(client, user)
    assert client.get("/settings/users").status_code == users_page
    assert client.get("/settings/").status_code == settings_page
    created = client.post(
        "/settings/users",
        data={"email": "new@example.org", "role": "viewer", "password": "a-long-password"},
    )
    assert created.status_code == (302 if role == Role.ADMIN else 403)


def test_role_decorator_orders_viewer_below_operator_below_admin(make_user, make_app):
    from tests.conftest import sign_in

    app = make_app()

    @app.get("/_probe/operator")
    @require_role(Role.OPERATOR)
    def operator_probe():
        return "ok"

    @app.get("/_probe/admin")
    @require_role("admin")
    def admin_probe():
        return "ok"

    expected = {
        Role.VIEWER: (403, 403),
        Role.OPERATOR: (200, 403),
        Role.ADMIN: (200, 200),
    }
    for role, (operator_status, admin_status) in expected.items():
        client = app.test_client()
        assert sign_in(client, make_user(role)).status_code == 302
        assert client.get("/_probe/operator").status_code == operator_status, role
        assert client.get("/_probe/admin").status_code == admin_status, role


def test_forbidden_page_says_which_role_is_needed(viewer_client):
    response = viewer_client.get("/settings/users")
    assert response.status_code == 403
    assert b"needs the admin role" in response.data
