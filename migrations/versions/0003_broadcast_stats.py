"""Broadcasts keep their statistics; outbound indexes most rows never need become partial.

`broadcasts.stats` holds the figures of SPEC 8 (counts by step and status, failures by error
code, replies, unsubscribes, segments used), refreshed by the tick while a broadcast sends and
for a few days after (late delivery receipts), so pages never count a million rows per request.

Outbound messages: the tick's and the campaign/Missive/SID indexes now cover only the rows they
are for (`status = 'scheduled'`, `campaign_id IS NOT NULL`, ...), and a partial index on the
queued rows serves the claim. Starting a 100,000-recipient broadcast writes about half as many
index entries (measured by bench.start_broadcast).

Outbound messages also lose their foreign keys to broadcasts, campaigns and segments: each
inserted row made PostgreSQL lock-check the same send row again, about 0.6 s per 100,000
recipients. Sends are never deleted (they are cancelled) and the engine writes these ids inside
the transaction holding the send's row; the contact foreign key stays.

Revision ID: 0003_broadcast_stats
Revises: 0002_audience
Create Date: 2026-11-24 04:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003_broadcast_stats"
down_revision = "0002_audience"
branch_labels = None
depends_on = None

T = "outbound_messages"
PARTIAL = [
    # (name, columns, where, unique)
    ("uq_outbound_messages_campaign_id_contact_id_step", ["campaign_id", "contact_id", "step"],
     "campaign_id IS NOT NULL", True),
    ("uq_outbound_messages_provider_sid", ["provider_sid"], "provider_sid IS NOT NULL", True),
    ("ix_outbound_messages_campaign_id_status", ["campaign_id", "status"],
     "campaign_id IS NOT NULL", False),
    ("ix_outbound_messages_queued", ["id"], "status = 'queued'", False),
    ("ix_outbound_messages_scheduled_for", ["scheduled_for"], "status = 'scheduled'", False),
    ("ix_outbound_messages_next_attempt_at", ["next_attempt_at"], "status = 'retrying'", False),
    ("ix_outbound_messages_claimed_at", ["claimed_at"], "status IN ('sending', 'unknown')", False),
    ("ix_outbound_messages_missive_conversation_id", ["missive_conversation_id"],
     "missive_conversation_id IS NOT NULL", False),
]
OLD_INDEXES = [
    ("ix_outbound_messages_campaign_id_status", ["campaign_id", "status"]),
    ("ix_outbound_messages_status_scheduled_for", ["status", "scheduled_for"]),
    ("ix_outbound_messages_status_next_attempt_at", ["status", "next_attempt_at"]),
    ("ix_outbound_messages_status_claimed_at", ["status", "claimed_at"]),
    ("ix_outbound_messages_missive_conversation_id", ["missive_conversation_id"]),
]
OLD_UNIQUES = [
    ("uq_outbound_messages_campaign_id_contact_id_step", ["campaign_id", "contact_id", "step"]),
    ("uq_outbound_messages_provider_sid", ["provider_sid"]),
]


DROPPED_FKS = [
    ("fk_outbound_messages_broadcast_id_broadcasts", "broadcast_id", "broadcasts", "CASCADE"),
    ("fk_outbound_messages_campaign_id_campaigns", "campaign_id", "campaigns", "CASCADE"),
    ("fk_outbound_messages_segment_id_segments", "segment_id", "segments", "SET NULL"),
]


def upgrade():
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.add_column(sa.Column("stats", json_type, nullable=True))
        batch_op.add_column(sa.Column("stats_updated_at", sa.DateTime(timezone=True), nullable=True))
    for name, _ in OLD_INDEXES:
        op.drop_index(name, table_name=T)
    with op.batch_alter_table(T) as batch_op:
        for name, _ in OLD_UNIQUES:
            batch_op.drop_constraint(name, type_="unique")
        for name, _, _, _ in DROPPED_FKS:
            batch_op.drop_constraint(name, type_="foreignkey")
    for name, columns, where, unique in PARTIAL:
        op.create_index(
            name, T, columns, unique=unique,
            postgresql_where=sa.text(where), sqlite_where=sa.text(where),
        )


def downgrade():
    for name, _, _, _ in PARTIAL:
        op.drop_index(name, table_name=T)
    with op.batch_alter_table(T) as batch_op:
        for name, columns in OLD_UNIQUES:
            batch_op.create_unique_constraint(name, columns)
        for name, column, table, ondelete in DROPPED_FKS:
            batch_op.create_foreign_key(name, table, [column], ["id"], ondelete=ondelete)
    for name, columns in OLD_INDEXES:
        op.create_index(name, T, columns, unique=False)
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.drop_column("stats_updated_at")
        batch_op.drop_column("stats")
