"""Signing in and out: passwords, remember me, rate limiting, safe redirects, CSRF, audit."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, Role
from tests.conftest import PASSWORD, sign_in
from tests.support import HX


def _csrf_token(client, url="/auth/login") -> str:
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_sign_in_with_the_right_password_opens_the_overview(client, viewer):
    response = sign_in(client, viewer)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and b"Overview" in page.data
    db.session.refresh(viewer)
    assert viewer.last_login_at is not None


def test_email_is_matched_case_insensitively(client, viewer):
    response = client.post(
        "/auth/login", data={"email": "  Viewer@Example.ORG ", "password": PASSWORD}
    )
    assert response.status_code == 302


def test_wrong_password_is_refused_with_a_message_and_audited(client, viewer):
    response = sign_in(client, viewer, password="wrong-password")
    assert response.status_code == 401
    assert b"do not match an active account" in response.data
    assert client.get("/").status_code == 302
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "login_failed"))
    assert entry is not None and entry.actor == viewer.email


def test_unknown_email_gets_the_same_answer_as_a_wrong_password(client):
    response = client.post("/auth/login", data={"email": "nobody@example.org", "password": "x"})
    assert response.status_code == 401
    assert b"do not match an active account" in response.data


def test_missing_fields_are_named(client):
    response = client.post("/auth/login", data={"email": "", "password": ""})
    assert response.status_code == 422
    assert response.data.count(b"This field is required.") == 2


def test_inactive_user_cannot_sign_in(client, make_user):
    user = make_user(Role.ADMIN, active=False)
    assert sign_in(client, user).status_code == 401


def test_deactivated_user_is_signed_out_on_the_next_request(client, viewer):
    sign_in(client, viewer)
    viewer.active = False
    db.session.commit()
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["/audit/", "/contacts/?q=ann&page=2", "/broadcasts/7#send"])
def test_sign_in_follows_a_next_path_on_this_site(client, viewer, target):
    assert sign_in(client, viewer, next=target).headers["Location"] == target


@pytest.mark.parametrize(
    "evil",
    [
        "//evil.example/",  # another site, same scheme
        "///evil.example/",
        "/\\evil.example",  # browsers read a backslash as a slash
        "\\\\evil.example",
        "/\t/evil.example",  # browsers drop tabs and newlines before reading the URL
        "/\n/evil.example",
        " //evil.example/",
        "https://evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
        "evil.example/audit/",  # not a path from the root
        "",
    ],
)
def test_sign_in_ignores_a_next_that_leaves_the_site(client, viewer, evil):
    assert sign_in(client, viewer, next=evil).headers["Location"] == "/"


def test_login_page_remembers_where_you_were_going(client):
    response = client.get("/settings/")
    assert response.headers["Location"] == "/auth/login?next=/settings/"
    assert b'value="/settings/"' in client.get(response.headers["Location"]).data


def test_remember_me_sets_a_long_lived_cookie(client, viewer):
    response = sign_in(client, viewer, remember="y")
    cookies = response.headers.getlist("Set-Cookie")
    remember = [c for c in cookies if c.startswith("remember_token=")]
    assert remember and "HttpOnly" in remember[0] and "Expires=" in remember[0]


def test_without_remember_me_there_is_no_remember_cookie(client, viewer):
    cookies = sign_in(client, viewer).headers.getlist("Set-Cookie")
    assert not [c for c in cookies if c.startswith("remember_token=")]


def test_sign_out_needs_a_post_and_ends_the_session(client, viewer):
    sign_in(client, viewer, remember="y")
    assert client.get("/auth/logout").status_code == 405
    response = client.post("/auth/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    assert client.get("/").status_code == 302
    actions = set(db.session.scalars(sa.select(AuditLog.action)))
    assert {"login", "logout"} <= actions


def test_repeated_failures_are_rate_limited_per_address(client, viewer, app):
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    for _ in range(limit):
        assert sign_in(client, viewer, password="wrong-password").status_code == 401
    blocked = sign_in(client, viewer)  # even the right password waits now
    assert blocked.status_code == 429
    assert b"Too many attempts" in blocked.data


def test_failures_from_many_addresses_are_rate_limited_per_email(client, viewer, app):
    app.config["LOGIN_EMAIL_RATE_LIMIT"] = "4 per hour"
    try:
        for i in range(4):  # one failure from each of four addresses: under the per-address limit
            response = client.post(
                "/auth/login",
                data={"email": viewer.email, "password": "wrong"},
                environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"},
            )
            assert response.status_code == 401
        response = client.post(
            "/auth/login",
            data={"email": viewer.email, "password": PASSWORD},
            environ_base={"REMOTE_ADDR": "10.0.1.1"},
        )
    finally:
        app.config["LOGIN_EMAIL_RATE_LIMIT"] = "50 per hour"
    assert response.status_code == 429


def test_a_few_addresses_cannot_lock_an_account_out(client, viewer, app):
    per_address = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    for address in ("10.0.0.1", "10.0.0.2"):
        for _ in range(per_address):
            client.post(
                "/auth/login",
                data={"email": viewer.email, "password": "wrong"},
                environ_base={"REMOTE_ADDR": address},
            )
    response = client.post(
        "/auth/login",
        data={"email": viewer.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.10"},
    )
    assert response.status_code == 302


def test_successful_sign_ins_do_not_count_towards_the_limit(client, viewer, app):
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    for _ in range(limit + 2):
        assert sign_in(client, viewer).status_code == 302
        client.post("/auth/logout")


def test_sign_in_without_a_csrf_token_is_rejected(client, viewer, csrf_enabled):
    response = sign_in(client, viewer)
    assert response.status_code == 400
    assert b"did not come from this site" in response.data
    assert client.get("/").status_code == 302


def test_sign_in_with_the_csrf_token_works(client, viewer, csrf_enabled):
    token = _csrf_token(client)
    assert sign_in(client, viewer, csrf_token=token).status_code == 302


def test_htmx_requests_carry_the_csrf_token_in_a_header(client, admin, csrf_enabled):
    sign_in(client, admin, csrf_token=_csrf_token(client))
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    without = client.post("/auth/logout", headers=HX)
    assert without.status_code == 400
    assert without.headers["HX-Retarget"] == "#flash"
    with_token = client.post("/auth/logout", headers={**HX, "X-CSRFToken": token})
    assert with_token.status_code == 302, with_token.data


def _remember_cookie(response) -> str:
    header = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")
    )
    return header.split(";")[0].split("=", 1)[1]


def _status_with_only_the_cookie(app, token: str) -> int:
    """What another browser holding just this remember-me cookie gets for the overview."""
    other = app.test_client()
    other.set_cookie("remember_token", token)
    return other.get("/").status_code


def test_a_remember_me_cookie_alone_signs_you_in(client, viewer, app):
    token = _remember_cookie(sign_in(client, viewer, remember="y"))
    assert _status_with_only_the_cookie(app, token) == 200


def test_a_copied_remember_me_cookie_stops_working_after_sign_out(client, viewer, app):
    token = _remember_cookie(sign_in(client, viewer, remember="y"))
    client.post("/auth/logout")
    assert _status_with_only_the_cookie(app, token) == 302


def test_a_password_change_signs_out_every_device(client, viewer, app):
    token = _remember_cookie(sign_in(client, viewer, remember="y"))
    viewer.set_password("a-brand-new-password")
    db.session.commit()
    assert client.get("/").status_code == 302
    assert _status_with_only_the_cookie(app, token) == 302


def test_a_nul_character_is_a_400_not_a_500(client, viewer):
    response = client.post("/auth/login", data={"email": "a\x00b@example.org", "password": "x"})
    assert response.status_code == 400
    assert b"NUL character" in response.data
    assert client.get("/auth/login?next=%00").status_code == 400


def test_a_failed_attempt_never_stores_what_looks_like_a_password(client):
    client.post("/auth/login", data={"email": "hunter2-secret", "password": "x"})
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "login_failed"))
    assert entry.actor == "(not an email address)"
