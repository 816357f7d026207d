"""`flask db upgrade` on an empty database, then `flask db check`: no drift, on PostgreSQL and SQLite."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support import drop_database, recreate_database, run_flask, scratch_database, test_env

pytestmark = pytest.mark.slow

TABLES = {
    "users",
    "contacts",
    "segments",
    "schedule_versions",
    "broadcasts",
    "broadcast_segments",
    "campaigns",
    "uploads",
    "upload_contacts",
    "outbound_messages",
    "inbound_messages",
    "missive_conversations",
    "missive_labels",
    "missive_conversation_labels",
    "job_runs",
    "audit_log",
    "settings",
}


def _upgrade_then_check(env: dict[str, str]) -> None:
    upgraded = run_flask(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = run_flask(["db", "check"], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_upgrade_on_empty_postgresql_then_check_reports_no_drift():
    url = recreate_database(scratch_database("migrations"))
    try:
        env = test_env(DATABASE_URL=url)
        _upgrade_then_check(env)
        # And back down to nothing, so a bad migration can be rolled back in production.
        downgraded = run_flask(["db", "downgrade", "base"], env)
        assert downgraded.returncode == 0, downgraded.stderr
    finally:
        drop_database(scratch_database("migrations"))


def test_upgrade_on_empty_sqlite_then_check_reports_no_drift(tmp_path):
    path = tmp_path / "broadcaster.db"
    _upgrade_then_check(test_env(DATABASE_URL=f"sqlite:///{path}"))
    with sqlite3.connect(path) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        indexes = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
    assert TABLES <= tables
    assert "uq_broadcasts_one_upcoming" in indexes
