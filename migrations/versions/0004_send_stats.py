"""Campaigns keep their statistics like broadcasts, and stored figures carry their shape's version.

The figures of any send now count people and messages apart (app/sends/stats.py). Both
`broadcasts` and `campaigns` get `stats_version`: figures stored before this release have none,
so pages never show them as they are (they compute fresh ones in memory) and the tick recomputes
a few of them per minute. `campaigns` gets `stats` and `stats_updated_at` as broadcasts have.

Revision ID: 0004_send_stats
Revises: 0003_broadcast_stats
Create Date: 2026-12-01 10:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0004_send_stats"
down_revision = "0003_broadcast_stats"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("stats_version", sa.SmallInteger(), nullable=True))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("stats", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )
        batch.add_column(sa.Column("stats_version", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("stats_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("stats_updated_at")
        batch.drop_column("stats_version")
        batch.drop_column("stats")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("stats_version")
