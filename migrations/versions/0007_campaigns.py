"""Campaigns can be started, skipped and cancelled with a reason, and carry their Missive label's state.

`campaigns` gets `cancelled_at`, `cancelled_by_id`, `started_by_id`, `status_note` (why it did
not run as planned: a run time missed beyond the catch-up window, a cancel, a target that
stopped working), and the Missive label's progress: `label_state` (pending, ready, failed),
`label_error` and `label_attempts`. `broadcasts` gets `cancelled_at` and `cancelled_by_id`:
a sending broadcast can now be cancelled through the same service.

Revision ID: 0007_campaigns
Revises: 0006_possible_opt_outs
Create Date: 2026-12-01 12:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_campaigns"
down_revision = "0006_possible_opt_outs"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("status_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("label_state", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("label_error", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("label_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("started_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cancelled_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_campaigns_started_by_id_users", "users", ["started_by_id"], ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            "fk_campaigns_cancelled_by_id_users", "users", ["cancelled_by_id"], ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancelled_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_broadcasts_cancelled_by_id_users", "users", ["cancelled_by_id"], ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_constraint("fk_broadcasts_cancelled_by_id_users", type_="foreignkey")
        batch.drop_column("cancelled_by_id")
        batch.drop_column("cancelled_at")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("fk_campaigns_cancelled_by_id_users", type_="foreignkey")
        batch.drop_constraint("fk_campaigns_started_by_id_users", type_="foreignkey")
        batch.drop_column("cancelled_by_id")
        batch.drop_column("started_by_id")
        batch.drop_column("label_attempts")
        batch.drop_column("label_error")
        batch.drop_column("label_state")
        batch.drop_column("status_note")
        batch.drop_column("cancelled_at")
