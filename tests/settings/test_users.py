"""Admins manage users in the UI: create, change role, deactivate, reset password; all audited."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, Role, User
from tests.conftest import sign_in


def _user(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email))


def test_admin_sees_the_users_and_the_new_user_form(admin_client, viewer):
    page = admin_client.get("/settings/users")
    assert page.status_code == 200
    assert viewer.email.encode() in page.data and b"Add a user" in page.data


def test_admin_creates_a_user_who_can_then_sign_in(admin_client, app):
    response = admin_client.post(
        "/settings/users",
        data={
            "email": "New.Person@Example.org",
            "name": "New Person",
            "role": "operator",
            "password": "a-long-password",
        },
    )
    assert response.status_code == 302
    user = _user("new.person@example.org")
    assert (
        user is not None and user.role == Role.OPERATOR and user.check_password("a-long-password")
    )
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "user_create"))
    assert entry.object_id == str(user.id) and "operator" in entry.summary
    other = app.test_client()
    assert sign_in(other, user, password="a-long-password").status_code == 302


def test_duplicate_email_is_refused_and_nothing_is_written(admin_client, viewer):
    before = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    response = admin_client.post(
        "/settings/users",
        data={"email": viewer.email.upper(), "role": "viewer", "password": "a-long-password"},
    )
    assert response.status_code == 422
    assert b"already exists" in response.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == before


def test_weak_password_and_bad_email_are_named_on_the_form(admin_client):
    response = admin_client.post(
        "/settings/users", data={"email": "not-an-email", "role": "viewer", "password": "short"}
    )
    assert response.status_code == 422
    assert b"Invalid email address" in response.data
    assert b"at least 10 characters" in response.data
    assert _user("not-an-email") is None


def test_unknown_role_is_refused(admin_client):
    response = admin_client.post(
        "/settings/users",
        data={"email": "x@example.org", "role": "superuser", "password": "a-long-password"},
    )
    assert response.status_code == 422
    assert b"Not a valid choice" in response.data
    assert _user("x@example.org") is None


def test_admin_changes_a_role_and_the_change_is_audited(admin_client, viewer):
    page = admin_client.get(f"/settings/users/{viewer.id}")
    assert page.status_code == 200 and b'<option selected value="viewer">' in page.data
    response = admin_client.post(
        f"/settings/users/{viewer.id}", data={"name": "Vera", "role": "operator", "active": "y"}
    )
    assert response.status_code == 302
    db.session.refresh(viewer)
    assert viewer.role == Role.OPERATOR and viewer.name == "Vera"
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "user_update"))
    assert entry.details["role"] == ["viewer", "operator"]


def test_deactivating_a_user_signs_them_out(admin_client, viewer, app):
    other = app.test_client()
    sign_in(other, viewer)
    assert other.get("/").status_code == 200
    admin_client.post(f"/settings/users/{viewer.id}", data={"name": "", "role": "viewer"})
    assert other.get("/").status_code == 302


def test_admin_resets_a_password(admin_client, viewer):
    admin_client.post(
        f"/settings/users/{viewer.id}",
        data={"role": "viewer", "active": "y", "password": "brand-new-password"},
    )
    db.session.refresh(viewer)
    assert viewer.check_password("brand-new-password")


def test_the_last_admin_cannot_be_demoted(admin_client, admin):
    response = admin_client.post(
        f"/settings/users/{admin.id}", data={"role": "viewer", "active": "y"}
    )
    assert response.status_code == 422
    assert b"at least one active admin" in response.data
    db.session.refresh(admin)
    assert admin.role == Role.ADMIN


def test_an_admin_cannot_deactivate_themselves(admin_client, admin, make_user):
    make_user(Role.ADMIN, email="second-admin@example.org")
    response = admin_client.post(f"/settings/users/{admin.id}", data={"role": "admin"})
    assert response.status_code == 422
    assert b"cannot deactivate your own account" in response.data
    db.session.refresh(admin)
    assert admin.active


def test_editing_a_missing_user_is_a_404(admin_client):
    assert admin_client.get("/settings/users/999999").status_code == 404


def test_settings_page_shows_the_transport_without_secrets(viewer_client, app):
    app.config["TWILIO_AUTH_TOKEN"] = "super-secret-token"
    try:
        page = viewer_client.get("/settings/")
    finally:
        app.config["TWILIO_AUTH_TOKEN"] = ""
    assert page.status_code == 200
    assert b"simulator" in page.data
    assert b"super-secret-token" not in page.data
    assert b"Only admins manage users" in page.data
