"""sql_guard on its own (no database): what a raw SQL segment may say, and how a refusal reads."""

from __future__ import annotations

import importlib.util

import pytest

from app.segments.sql_guard import ALLOWED_COLUMNS, check_segment_sql
from app.validation import ValidationError
from tests.support import ROOT

ALLOWED = [
    "SELECT phone AS phone_number FROM contacts",
    "select phone as phone_number from contacts;",
    "TABLE contacts",
    # Replied in the last 30 days, in one zip code.
    "SELECT c.phone AS phone_number FROM contacts c JOIN inbound_messages i ON i.contact_id = c.id"
    " WHERE i.received_at > now() - interval '30 days' AND c.zip_code IN ('48201')"
    " GROUP BY c.phone HAVING count(*) > 1 ORDER BY 1 LIMIT 10",
    "WITH got AS (SELECT contact_id FROM outbound_messages WHERE status = 'delivered')"
    " SELECT phone AS phone_number FROM contacts WHERE id IN (SELECT contact_id FROM got)",
    "SELECT substr(phone, 2) AS phone_number FROM contacts WHERE attributes->>'ward' = '3'"
    " AND extract(year FROM created_at) = 2024 AND created_at AT TIME ZONE 'UTC' > '2020-01-01'"
    " AND phone::text LIKE '+1%' AND trim(name) <> '' AND position('a' IN name) > 0",
    "SELECT phone AS phone_number FROM contacts c WHERE EXISTS (SELECT 1"
    " FROM missive_conversation_labels cl"
    " JOIN missive_conversations mc ON mc.id = cl.conversation_id"
    " JOIN missive_labels l ON l.id = cl.label_id"
    " WHERE mc.contact_id = c.id AND l.name = 'Volunteers' AND NOT cl.removed)",
    "SELECT phone AS phone_number FROM contacts WHERE id IN"
    " (SELECT contact_id FROM upload_contacts WHERE upload_id = 3)"
    " UNION SELECT phone FROM inbound_messages WHERE keyword IS NULL",
    "SELECT t.p AS phone_number FROM (SELECT phone AS p FROM contacts) AS t",
    "SELECT phone_number FROM (SELECT phone FROM contacts) AS t(phone_number)",
    "SELECT x AS phone_number FROM unnest(ARRAY['+13135550201', '+13135550202']) AS x",
    "SELECT phone AS phone_number FROM contacts WHERE created_at > current_date - 30",
    "SELECT DISTINCT ON (zip_code) phone AS phone_number FROM contacts ORDER BY zip_code, id",
    "SELECT phone AS phone_number FROM contacts WHERE coalesce(email, '') <> ''"
    " AND greatest(1, 2) = 2 AND CASE WHEN excluded THEN false ELSE true END",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_queries_a_segment_needs_are_allowed(sql):
    assert check_segment_sql(sql).startswith(("SELECT", "WITH"))


def test_what_runs_is_printed_back_from_the_tree_without_comments():
    sql = "SELECT phone AS phone_number -- ; DELETE FROM contacts\nFROM contacts /* ; */;"
    assert check_segment_sql(sql) == "SELECT phone AS phone_number FROM contacts"
    # No colon is left for SQLAlchemy to take for a parameter, and strings stay strings.
    assert check_segment_sql("SELECT phone::text AS phone_number, 'x:y;' FROM contacts") == (
        "SELECT CAST(phone AS text) AS phone_number, 'x:y;' FROM contacts"
    )


ESCAPES = [
    # Reading what segments must not: other tables, schemas, catalogs, secret columns.
    (
        "SELECT phone AS phone_number FROM contacts WHERE id IN (SELECT id FROM users)",
        "reads the table users, which segments may not read",
    ),
    ("SELECT password_hash AS phone_number FROM users", "reads the table users"),
    ("SELECT password_hash AS phone_number FROM contacts", "Unknown column password_hash"),
    (
        "SELECT CAST(u.password_hash AS int) AS phone_number FROM contacts c, users u",
        "reads the table users",
    ),
    ("SELECT phone AS phone_number FROM public.users", "Name tables without a schema"),
    ("SELECT phone AS phone_number FROM public.contacts", "Name tables without a schema"),
    ("SELECT rolname AS phone_number FROM pg_catalog.pg_authid", "without a schema"),
    ("SELECT usename AS phone_number FROM pg_user", "reads the table pg_user"),
    ("SELECT body AS phone_number FROM inbound_messages", "Unknown column body"),
    ("SELECT i.body AS phone_number FROM inbound_messages i", "Unknown column i.body"),
    ("SELECT token_hash AS phone_number FROM api_tokens", "reads the table api_tokens"),
    ("SELECT unsubscribe_reason AS phone_number FROM contacts", "Unknown column"),
    ("SELECT data AS phone_number FROM upload_contacts", "Unknown column data"),
    ("SELECT x.phone AS phone_number FROM contacts", "Unknown table or alias x"),
    ("SELECT phone AS phone_number FROM contacts WHERE 'users'::regclass IS NOT NULL", "regclass"),
    ("SELECT current_user AS phone_number", "CURRENT_USER is not allowed"),
    # Functions that read files or settings, wait, signal, set, or run SQL given as text.
    ("SELECT pg_read_file('/etc/passwd') AS phone_number", "function pg_read_file is not"),
    ("SELECT pg_catalog.pg_read_binary_file('x') AS phone_number", "pg_read_binary_file"),
    ("SELECT phone AS phone_number FROM contacts, pg_sleep(10)", "function pg_sleep is not"),
    ("SELECT pg_terminate_backend(1)::text AS phone_number", "pg_terminate_backend"),
    ("SELECT pg_cancel_backend(1)::text AS phone_number", "pg_cancel_backend"),
    ("SELECT set_config('role', 'postgres', true) AS phone_number", "function set_config is"),
    ("SELECT current_setting('data_directory') AS phone_number", "current_setting"),
    ("SELECT query_to_xml('SELECT * FROM users', true, true, '')::text", "query_to_xml"),
    ("SELECT dblink('dbname=x', 'SELECT 1')::text AS phone_number", "function dblink is"),
    ("SELECT lo_import('/etc/passwd')::text AS phone_number", "function lo_import is"),
    ("SELECT lo_get(1)::text AS phone_number", "function lo_get is"),
    ("SELECT nextval('contacts_id_seq')::text AS phone_number", "function nextval is"),
    ("SELECT public.lower(phone) AS phone_number FROM contacts", "public.lower is not allowed"),
    ("SELECT phone AS phone_number FROM contacts WHERE phone OPERATOR(public.=) 'x'", "operator"),
    # Anything but one SELECT.
    ("SELECT 1 AS phone_number; DROP TABLE contacts", "single statement"),
    ("SELECT 1 AS phone_number /* ; */; DELETE FROM contacts -- ;", "single statement"),
    ("COPY contacts TO '/tmp/contacts.csv'", "this is a COPY"),
    ("COPY (SELECT phone FROM contacts) TO PROGRAM 'sh'", "this is a COPY"),
    ("SELECT phone AS phone_number INTO stolen FROM contacts", "SELECT … INTO creates a table"),
    ("SELECT phone AS phone_number FROM contacts FOR UPDATE", "FOR UPDATE / FOR SHARE"),
    ("SELECT phone AS phone_number FROM contacts FOR SHARE SKIP LOCKED", "FOR UPDATE / FOR SHARE"),
    (
        "WITH gone AS (DELETE FROM contacts RETURNING phone AS phone_number) SELECT * FROM gone",
        "the WITH clause holds a DELETE",
    ),
    ("UPDATE contacts SET name = 'x'", "this is an UPDATE"),
    ("SET statement_timeout = 0", "this is a SET"),
    ("EXPLAIN ANALYZE SELECT phone FROM contacts", "this is an EXPLAIN"),
    ("DO $$ BEGIN PERFORM 1; END $$", "this is a DO block"),
    ("SELECT phone AS phone_number FROM contacts WHERE id = $1", "Parameters"),
    ("SELECT xmlparse(document '<a/>')::text AS phone_number", "XML"),
    ("SELECT phone AS phone_number FROM contacts TABLESAMPLE SYSTEM (10)", "TABLESAMPLE"),
    ("SELEC phone FROM contacts", 'does not parse: syntax error at or near "SELEC"'),
    ("", "Enter a query"),
    (" ; ", "Enter a query"),
    ("SELECT 1 AS phone_number WHERE '" + "x" * 20_000 + "' = ''", "too long"),
]


@pytest.mark.parametrize(("sql", "message"), ESCAPES)
def test_escapes_are_refused_with_a_message_naming_the_problem(sql, message):
    with pytest.raises(ValidationError) as caught:
        check_segment_sql(sql)
    assert caught.value.field == "raw_sql"
    assert message in caught.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_sleep(1), 'hunter2' AS phone_number",
        "SELECT 'hunter2'::regclass AS phone_number",
        "SELECT phone AS phone_number FROM users WHERE password_hash = 'hunter2'",
        "COPY (SELECT 'hunter2') TO STDOUT",
    ],
)
def test_refusals_never_quote_the_values_in_the_query(sql):
    with pytest.raises(ValidationError) as caught:
        check_segment_sql(sql)
    assert "hunter2" not in caught.value.message


def test_the_views_of_migration_0005_have_exactly_the_allowed_columns():
    path = ROOT / "migrations" / "versions" / "0005_segment_reader.py"
    spec = importlib.util.spec_from_file_location("migration_0005", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    views = {
        name: tuple(c.strip() for c in cols.split(",")) for name, cols in migration.VIEWS.items()
    }
    assert views == ALLOWED_COLUMNS
