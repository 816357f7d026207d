"""Replies that read like an opt-out wait for a person; messages that went out are indexed by time.

`inbound_messages` gets `review` ("possible_opt_out": "please stop texting me" is a reply, not a
keyword, and a person decides), `review_outcome` ("unsubscribed" or "kept"), `reviewed_at` and
`reviewed_by_id`, with a partial index on the ones still waiting (the Needs attention lists).

`outbound_messages` gets a partial index on `sent_at` (rows without one are not in it, so
starting a broadcast writes nothing more): the overview counts the messages sent in 24 hours.

Revision ID: 0006_possible_opt_outs
Revises: 0005_segment_reader
Create Date: 2026-12-01 11:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_possible_opt_outs"
down_revision = "0005_segment_reader"
branch_labels = None
depends_on = None

PENDING = "review IS NOT NULL AND review_outcome IS NULL"


def upgrade():
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("review", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("review_outcome", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reviewed_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_inbound_messages_reviewed_by_id_users",
            "users",
            ["reviewed_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index(
        "ix_inbound_messages_review_pending",
        "inbound_messages",
        ["received_at"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    op.create_index(
        "ix_outbound_messages_sent_at",
        "outbound_messages",
        ["sent_at"],
        postgresql_where=sa.text("sent_at IS NOT NULL"),
        sqlite_where=sa.text("sent_at IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_outbound_messages_sent_at", table_name="outbound_messages")
    op.drop_index("ix_inbound_messages_review_pending", table_name="inbound_messages")
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_constraint("fk_inbound_messages_reviewed_by_id_users", type_="foreignkey")
        batch.drop_column("reviewed_by_id")
        batch.drop_column("reviewed_at")
        batch.drop_column("review_outcome")
        batch.drop_column("review")
