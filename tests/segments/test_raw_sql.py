"""Raw SQL segments against the real database: the escapes a security review tried are refused
or harmless, allowed queries still find the right people, the reader role (migration 0005) is
the second wall, counts need an operator and are kept a minute."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Contact, User, utcnow
from app.segments import services
from app.segments.services import Audience, check_raw_sql, count_segment_contacts
from app.validation import ValidationError
from tests.factories import (
    ContactFactory,
    InboundMessageFactory,
    SegmentFactory,
    UserFactory,
)
from tests.support import HX, by_id

SECRET_NAME = "Zanzibar Quux"
EVERYONE = "SELECT phone AS phone_number FROM contacts"


@pytest.fixture
def people(app):
    """Two eligible contacts, one with a name an error must never show; a user with a hash."""
    made = dict(
        ava=ContactFactory(phone="+13135550401", name=SECRET_NAME, zip_code="48201"),
        ben=ContactFactory(phone="+13135550402", zip_code="48226"),
        admin=UserFactory(email="hash@example.org"),
    )
    db.session.flush()
    return made


def _refusal(sql: str) -> str:
    with pytest.raises(ValidationError) as caught:
        check_raw_sql(sql)
    assert caught.value.field == "raw_sql"
    return caught.value.message


def _assert_untouched(people) -> None:
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) >= 1
    # The session is usable and no longer read-only, nor the reader role.
    assert db.session.scalar(sa.text("SELECT current_user")) != "broadcaster_segment_reader"
    assert db.session.scalar(sa.text("SHOW transaction_read_only")) == "off"
    ContactFactory(phone="+13135550499")
    db.session.flush()


ESCAPES = [
    ("SELECT phone AS phone_number FROM contacts WHERE id IN (SELECT id FROM users)", "users"),
    ("SELECT password_hash AS phone_number FROM users", "reads the table users"),
    ("SELECT CAST(password_hash AS int) AS phone_number FROM public.users", "without a schema"),
    ("SELECT pg_read_file('/etc/passwd') AS phone_number", "pg_read_file is not allowed"),
    ("SELECT phone AS phone_number FROM contacts, pg_sleep(10)", "pg_sleep is not allowed"),
    ("SELECT pg_terminate_backend(pg_backend_pid())::text AS phone_number", "not allowed"),
    ("SELECT set_config('role', 'postgres', true) AS phone_number", "set_config is not allowed"),
    ("SELECT 1 AS phone_number /* ; */; DELETE FROM contacts", "single statement"),
    ("COPY contacts TO STDOUT", "this is a COPY"),
    ("SELECT phone AS phone_number INTO stolen FROM contacts", "SELECT … INTO"),
    ("SELECT phone AS phone_number FROM contacts FOR UPDATE", "FOR UPDATE"),
]


@pytest.mark.parametrize(("sql", "message"), ESCAPES)
def test_every_escape_the_review_tried_is_refused_and_changes_nothing(people, sql, message):
    assert message in _refusal(sql)
    _assert_untouched(people)


def test_a_comment_hiding_a_semicolon_is_only_a_comment(people):
    sql = EVERYONE + " -- ; DELETE FROM contacts\n"
    assert check_raw_sql(sql) == 2
    sql = EVERYONE + " /* ; DELETE FROM contacts; */ WHERE zip_code = '48201'"
    assert check_raw_sql(sql) == 1
    _assert_untouched(people)


def test_an_error_that_would_echo_data_names_the_problem_only(people):
    # PostgreSQL would say: invalid input syntax for type integer: "Zanzibar Quux".
    message = _refusal("SELECT phone AS phone_number FROM contacts WHERE CAST(name AS int) > 0")
    assert message.startswith("A value could not be read as the type asked for")
    assert SECRET_NAME not in message and "Zanzibar" not in message


# --- the second wall: what the reader role stops even if the checker let a query through ---


@pytest.fixture
def unchecked(monkeypatch):
    """Pretend sql_guard missed everything: the query runs as written (as the reader role)."""
    monkeypatch.setattr(services, "check_segment_sql", lambda sql: sql.strip().rstrip(";"))


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        # `users` is not on the reader's search path, and public's tables are not granted.
        ("SELECT password_hash AS phone_number FROM users", "reads a table"),
        ("SELECT password_hash AS phone_number FROM public.users", "may not read"),
        (
            "SELECT phone AS phone_number FROM contacts WHERE phone IN "
            "(SELECT password_hash FROM public.users)",
            "may not read",
        ),
        ("SELECT CAST(password_hash AS int) AS phone_number FROM public.users", "may not read"),
        ("SELECT body AS phone_number FROM inbound_messages", "Unknown column body"),
        ("SELECT body AS phone_number FROM public.inbound_messages", "may not read"),
        ("SELECT pg_read_file('/etc/passwd') AS phone_number", "may not read"),
        ("SELECT lo_import('/etc/passwd')::text AS phone_number", "may not read"),
        # A superuser's backend (this test's own) cannot be signalled by the reader role.
        ("SELECT pg_terminate_backend(pg_backend_pid())::text AS phone_number", "may not read"),
        # Inside the subquery that intersects it with eligible contacts, INTO cannot even parse.
        ("SELECT phone AS phone_number INTO stolen FROM contacts", "syntax error"),
    ],
)
def test_the_reader_role_stops_what_the_checker_might_miss(people, unchecked, sql, message):
    found = _refusal(sql)
    assert message in found
    assert "pbkdf2" not in found and "scrypt" not in found and SECRET_NAME not in found
    _assert_untouched(people)


def test_a_query_that_waits_is_stopped_by_the_timeout_even_unchecked(
    people, unchecked, monkeypatch
):
    monkeypatch.setattr(services, "RAW_SQL_TIMEOUT_MS", 200)
    assert "took longer than" in _refusal("SELECT phone AS phone_number FROM contacts, pg_sleep(2)")
    _assert_untouched(people)


def test_the_reader_role_sees_only_the_allowed_columns(people):
    columns = db.session.scalars(
        sa.text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'segment_data' AND table_name = 'contacts' ORDER BY column_name"
        )
    ).all()
    assert "unsubscribe_reason" not in columns and "phone" in columns
    privileges = db.session.execute(
        sa.text(
            "SELECT has_table_privilege(:r, 'public.users', 'SELECT'),"
            " has_table_privilege(:r, 'public.contacts', 'SELECT'),"
            " has_table_privilege(:r, 'segment_data.contacts', 'SELECT'),"
            " has_table_privilege(:r, 'segment_data.contacts', 'INSERT'),"
            " has_function_privilege(:r, 'pg_read_file(text)', 'EXECUTE')"
        ),
        {"r": "broadcaster_segment_reader"},
    ).one()
    assert tuple(privileges) == (False, False, True, False, False)


# --- without the role, raw SQL is refused, never run as the owner -----------------------------


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("", "turned off: SEGMENT_READER_ROLE is empty"),
        ("no_such_segment_reader", "the database role no_such_segment_reader does not exist"),
        ("postgres", "the database role postgres can read more than segments need"),
    ],
)
def test_without_a_proper_reader_role_raw_sql_is_refused(people, app, monkeypatch, role, message):
    monkeypatch.setitem(app.config, "SEGMENT_READER_ROLE", role)
    found = _refusal(EVERYONE)
    assert message in found and 'see "Raw SQL segments" in the README' in found


def test_a_role_that_may_not_read_the_segment_views_is_refused(people, app, monkeypatch):
    db.session.execute(sa.text("CREATE ROLE sqlguard_test_nobody NOLOGIN"))  # rolled back
    monkeypatch.setitem(app.config, "SEGMENT_READER_ROLE", "sqlguard_test_nobody")
    assert "may not read the segment_data schema" in _refusal(EVERYONE)


# --- allowed queries still work ----------------------------------------------------------------


def test_allowed_queries_find_the_right_people(people):
    recent = utcnow() - timedelta(days=2)
    InboundMessageFactory(contact=people["ben"], phone=people["ben"].phone, received_at=recent)
    db.session.flush()
    replied = (
        "SELECT c.phone AS phone_number FROM contacts c JOIN inbound_messages i"
        " ON i.contact_id = c.id WHERE i.received_at > now() - interval '7 days'"
    )
    segment = SegmentFactory(rule={"all": []}, raw_sql=replied)
    found = services.resolve_segment_contact_ids(segment, purpose=Audience.BROADCAST)
    assert found == [people["ben"].id]
    by_zip = (
        "WITH z AS (SELECT id FROM contacts WHERE zip_code = '48201')"
        " SELECT phone AS phone_number FROM contacts WHERE id IN (SELECT id FROM z)"
    )
    assert check_raw_sql(by_zip) == 1


# --- counting: operators only, kept a minute ---------------------------------------------------


def test_counting_a_raw_sql_segment_needs_an_operator(people, viewer_client):
    segment = SegmentFactory(name="Legacy", rule={"all": []}, raw_sql=EVERYONE)
    db.session.commit()
    response = viewer_client.get(f"/segments/{segment.id}/count", headers=HX)
    assert response.status_code == 403
    assert "Operators see the counts of raw SQL segments" in response.get_data(as_text=True)
    row = by_id(
        viewer_client.get("/segments/").get_data(as_text=True), f"segments-row-{segment.id}"
    )
    assert "Operators see the counts" in row.text and "hx-get" not in row


def test_raw_sql_counts_are_kept_for_a_minute(people, operator_client, redis_conn):
    segment = SegmentFactory(name="Legacy", rule={"all": []}, raw_sql=EVERYONE)
    db.session.commit()
    html = operator_client.get(f"/segments/{segment.id}/count", headers=HX).get_data(as_text=True)
    assert f'id="segments-count-{segment.id}">2<' in html
    ContactFactory(phone="+13135550403")
    db.session.commit()
    html = operator_client.get(f"/segments/{segment.id}/count", headers=HX).get_data(as_text=True)
    assert f'id="segments-count-{segment.id}">2<' in html  # the cached count
    keys = redis_conn.keys("*segment-count:*")
    assert len(keys) == 2 and all(0 < redis_conn.ttl(key) <= 60 for key in keys)
    # What a send resolves is never cached.
    assert len(services.resolve_segment_contact_ids(segment, purpose=Audience.BROADCAST)) == 3
    redis_conn.delete(*keys)
    assert count_segment_contacts(segment, purpose=Audience.BROADCAST) == 3


def test_raw_sql_segments_need_postgresql(make_app, tmp_path):
    sqlite_app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'dev.db'}")
    with sqlite_app.app_context():
        with pytest.raises(ValidationError, match="Raw SQL segments need PostgreSQL"):
            check_raw_sql(EVERYONE)


def test_the_sql_page_lists_what_a_query_may_read(admin_client):
    html = admin_client.get("/segments/new?kind=sql").get_data(as_text=True)
    allowed = by_id(html, "segments-sql-allowed")
    assert "missive_conversation_labels" in allowed and "password_hash" not in allowed
