"""Broadcasts keep their statistics, so pages never count a million rows per request.

`stats` holds the figures of SPEC 8 (counts by step and status, failures by error code,
replies, unsubscribes, segments used), refreshed by the tick while a broadcast sends and for
a few days after (late delivery receipts), and on demand when a page finds them stale.

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


def upgrade():
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.add_column(sa.Column("stats", json_type, nullable=True))
        batch_op.add_column(sa.Column("stats_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.drop_column("stats_updated_at")
        batch_op.drop_column("stats")
