"""Raw SQL segments run as a role that can read only what segments need.

A schema `segment_data` holds one view per table a segment may read (contacts without free-text
reasons, message metadata without bodies or provider ids, the Missive mirror, upload
memberships), with the columns of `app/segments/sql_guard.py`'s allow list. A NOLOGIN role
`broadcaster_segment_reader` gets USAGE on that schema and SELECT on those views, nothing else;
the app runs an admin's query with `SET LOCAL ROLE` and `search_path = segment_data`, so
`contacts` in the query means the view. The views belong to the migrating user and read the
tables with its rights, which is what limits the columns.

PostgreSQL only, and only what the connecting user may do: the schema needs CREATE on the
database, the role needs CREATEROLE (Heroku's default credential has the first, not the second:
the README says how to make the role there with `heroku pg:credentials:create`). Without the
role the app refuses raw SQL segments; it never runs them as the owner. Roles belong to the
whole server, so the downgrade drops the role only when no other database still uses it.

Revision ID: 0005_segment_reader
Revises: 0004_send_stats
Create Date: 2026-12-08 10:00:00
"""
import logging

from alembic import op
import sqlalchemy as sa

revision = "0005_segment_reader"
down_revision = "0004_send_stats"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SCHEMA = "segment_data"
ROLE = "broadcaster_segment_reader"

# A copy, not an import (migrations never import app code): keep it equal to
# app/segments/sql_guard.ALLOWED_COLUMNS (a test compares them).
VIEWS = {
    "contacts": (
        "id, phone, name, email, zip_code, time_zone, attributes, unsubscribed, unsubscribed_at,"
        " excluded, excluded_at, exclude_reason, source, created_at, updated_at"
    ),
    "outbound_messages": (
        "id, broadcast_id, campaign_id, contact_id, step, segment_id, status, transport,"
        " error_code, sms_segments, scheduled_for, sent_at, delivered_at, failed_at, created_at,"
        " updated_at"
    ),
    "inbound_messages": (
        "id, phone, received_at, contact_id, reply_to_id, keyword, provider, created_at"
    ),
    "missive_conversations": "id, contact_id, phone, closed, created_at, updated_at",
    "missive_labels": "id, missive_id, name, parent_missive_id",
    "missive_conversation_labels": (
        "id, conversation_id, label_id, first_applied_at, last_applied_at, removed, removed_at"
    ),
    "upload_contacts": "upload_id, contact_id, row_number",
}


def _scalar(sql, **params):
    return op.get_bind().execute(sa.text(sql), params).scalar()


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    schema_exists = _scalar("SELECT count(*) FROM pg_namespace WHERE nspname = :s", s=SCHEMA)
    may_create = _scalar("SELECT has_database_privilege(current_database(), 'CREATE')")
    if not schema_exists and not may_create:
        log.warning("No CREATE on the database: %s not made, raw SQL segments stay refused "
                    "(see 'Raw SQL segments' in the README)", SCHEMA)
        return
    tables = _scalar("SELECT quote_ident(current_schema())")
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.execute(f"REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC")
    for name, columns in VIEWS.items():
        op.execute(f"DROP VIEW IF EXISTS {SCHEMA}.{name}")
        op.execute(f"CREATE VIEW {SCHEMA}.{name} AS SELECT {columns} FROM {tables}.{name}")
        op.execute(f"REVOKE ALL ON {SCHEMA}.{name} FROM PUBLIC")

    # The role: made here when this user may (a race with another database's migration on the
    # same server is fine), then granted the views, and to this user so it can SET ROLE to it.
    op.execute(f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}')
             AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user)
          THEN
            CREATE ROLE {ROLE} NOLOGIN;
          END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
          NULL;
        END $$""")
    if not _scalar("SELECT count(*) FROM pg_roles WHERE rolname = :r", r=ROLE):
        log.warning("This user may not create roles: %s not made, raw SQL segments stay "
                    "refused until it exists (see 'Raw SQL segments' in the README)", ROLE)
        return
    op.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {ROLE}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {ROLE}")
    op.execute(f"""
        DO $$
        BEGIN
          IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE format('GRANT {ROLE} TO %I', current_user);
          END IF;
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
          RAISE NOTICE 'cannot grant {ROLE} to %: raw SQL segments stay refused', current_user;
        END $$""")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    op.execute(f"""
        DO $$
        BEGIN
          IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
            DROP ROLE {ROLE};
          END IF;
        EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege THEN
          RAISE NOTICE '{ROLE} kept: another database uses it, or this user may not drop it';
        END $$""")
