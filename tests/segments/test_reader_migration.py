"""Migration 0005 on throwaway databases: as a superuser it makes the views and the reader role,
goes down and up again; as a database owner who may not create roles (Heroku's default
credential) it still migrates, and the app then refuses raw SQL with a clear message."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from app.segments.services import check_raw_sql
from app.segments.sql_guard import ALLOWED_COLUMNS
from app.validation import ValidationError
from tests.support import (
    _admin_conninfo,
    database_url_named,
    drop_database,
    make_test_config,
    recreate_database,
    run_flask,
    scratch_database,
    test_env,
)

pytestmark = pytest.mark.slow

ROLE = "broadcaster_segment_reader"


def _views(url: str) -> dict[str, list[str]]:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'segment_data' ORDER BY table_name, ordinal_position"
        ).fetchall()
    views: dict[str, list[str]] = {}
    for table, column in rows:
        views.setdefault(table, []).append(column)
    return views


def _flask(args: list[str], url: str) -> None:
    done = run_flask(args, test_env(DATABASE_URL=url))
    assert done.returncode == 0, done.stdout + done.stderr


def test_upgrade_makes_the_views_and_the_role_and_downgrade_removes_the_views():
    name = scratch_database("segment_reader")
    url = recreate_database(name)
    try:
        _flask(["db", "upgrade"], url)
        assert _views(url) == {t: list(c) for t, c in ALLOWED_COLUMNS.items()}
        with psycopg.connect(_admin_conninfo()) as conn:
            assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        _flask(["db", "downgrade", "0004_send_stats"], url)
        assert _views(url) == {}
        _flask(["db", "upgrade"], url)
        assert set(_views(url)) == set(ALLOWED_COLUMNS)
    finally:
        drop_database(name)


def test_an_owner_who_may_not_create_roles_migrates_and_raw_sql_is_refused_clearly():
    name = scratch_database("segment_owner")
    owner = f"{name}_owner"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{owner}"')
        conn.execute(f'CREATE ROLE "{owner}" LOGIN NOCREATEROLE NOSUPERUSER')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    url = make_url(database_url_named(name)).set(username=owner, password=None)
    url = url.render_as_string(hide_password=False)
    try:
        _flask(["db", "upgrade"], url)
        assert set(_views(url)) == set(ALLOWED_COLUMNS)
        other = create_app(make_test_config(url))
        with other.app_context():
            # Whether the reader role exists on this server or not, this owner cannot become it.
            with pytest.raises(ValidationError) as caught:
                check_raw_sql("SELECT phone AS phone_number FROM contacts")
            assert caught.value.message.startswith("Raw SQL segments are refused: ")
            assert caught.value.message.endswith('(see "Raw SQL segments" in the README).')
            db.session.remove()
            db.engine.dispose()
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{owner}"')
