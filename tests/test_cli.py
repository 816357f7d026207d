"""The command line: users create/list (the password never on the command line unless asked)
and seed-demo (safe to run twice)."""

from __future__ import annotations

import sqlalchemy as sa

from app.cli import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD
from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    Contact,
    Role,
    ScheduleVersion,
    Segment,
    User,
)


def test_users_create_then_list(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Ops@Example.org",
            "--role",
            "admin",
            "--password",
            "long-password",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created ops@example.org (admin)" in result.output
    user = db.session.scalar(sa.select(User).where(User.email == "ops@example.org"))
    assert user.role == Role.ADMIN and user.check_password("long-password")

    listed = runner.invoke(args=["users", "list"])
    assert "ops@example.org\tadmin\tactive\tlast sign-in: never" in listed.output


def test_users_create_refuses_duplicates_and_weak_passwords(app):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["users", "create", "a@example.org", "--password", "long-password"])
    assert ok.exit_code == 0
    duplicate = runner.invoke(
        args=["users", "create", "A@example.org", "--password", "long-password"]
    )
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    weak = runner.invoke(args=["users", "create", "b@example.org", "--password", "short"])
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
    bad_role = runner.invoke(
        args=["users", "create", "c@example.org", "--role", "root", "--password", "long-password"]
    )
    assert bad_role.exit_code == 2


def test_users_list_when_empty_says_how_to_create_one(app):
    result = app.test_cli_runner().invoke(args=["users", "list"])
    assert "No users yet" in result.output


def _counts() -> tuple[int, int, int, int]:
    def count(model, *where):
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    return (
        count(Contact),
        count(Segment),
        count(Broadcast, Broadcast.status == BroadcastStatus.UPCOMING),
        count(ScheduleVersion),
        count(Campaign, Campaign.status == CampaignStatus.SCHEDULED),
    )


def test_seed_demo_is_safe_to_run_twice_and_prints_working_credentials(app, client):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert f"Sign in as {DEMO_ADMIN_EMAIL} with password {DEMO_ADMIN_PASSWORD}" in first.output
    after_first = _counts()
    assert after_first[0] >= 300 - 1 and after_first[1:] == (2, 1, 1, 1)

    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert _counts() == after_first

    response = client.post(
        "/auth/login", data={"email": DEMO_ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD}
    )
    assert response.status_code == 302
    overview = client.get("/")
    assert b"Good morning from the Detroit newsroom" in overview.data


def test_users_create_asks_for_the_password_when_it_is_not_given(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "asked@example.org"], input="long-password\nlong-password\n"
    )
    assert result.exit_code == 0, result.output
    assert "long-password" not in result.output  # typed hidden
    user = db.session.scalar(sa.select(User).where(User.email == "asked@example.org"))
    assert user.check_password("long-password")


def test_users_create_asks_again_when_the_two_passwords_differ(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "twice@example.org"],
        input="long-password\nlong-passw0rd\nlong-password\nlong-password\n",
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    user = db.session.scalar(sa.select(User).where(User.email == "twice@example.org"))
    assert user.check_password("long-password")


def test_users_create_reads_the_password_from_stdin_for_scripts(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "piped@example.org", "--role", "admin", "--password-stdin"],
        input="a long piped password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password" not in result.output  # nothing asked
    user = db.session.scalar(sa.select(User).where(User.email == "piped@example.org"))
    assert user.role == Role.ADMIN and user.check_password("a long piped password")


def test_users_create_from_stdin_still_refuses_a_weak_or_missing_password(app):
    runner = app.test_cli_runner()
    for piped in ("short\n", ""):
        result = runner.invoke(
            args=["users", "create", "weak@example.org", "--password-stdin"], input=piped
        )
        assert result.exit_code == 1 and "at least 10 characters" in result.output
    assert db.session.scalar(sa.select(User).where(User.email == "weak@example.org")) is None


def test_users_create_takes_the_password_one_way_only(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "both@example.org", "--password-stdin", "--password", "x" * 12],
        input="long-password\n",
    )
    assert result.exit_code == 2 and "one way" in result.output


def test_seed_demo_refuses_to_run_on_production_without_force(app):
    app.config["PRODUCTION"] = True
    try:
        result = app.test_cli_runner().invoke(args=["seed-demo"])
    finally:
        app.config["PRODUCTION"] = False
    assert result.exit_code == 1 and "looks like production" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0
