"""Status callbacks are accepted with one insert into an inbox and applied in bulk.

The Twilio status webhook stores each callback in `status_callbacks` and answers 204; a worker
applies what is pending a moment later in bulk (monotonic, as before), writes each callback to
the webhook log with its outcome and deletes it from the inbox, and the every-minute tick
sweeps anything left (a worker or Redis outage only delays a status). `retry_at` holds back a
callback by SID only whose message has no SID yet, until the worker has recorded it.

Revision ID: 0012_status_callbacks
Revises: 0011_twilio_sid
Create Date: 2026-12-01 14:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_status_callbacks"
down_revision = "0011_twilio_sid"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "status_callbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("provider_status", sa.String(length=40), nullable=False),
        sa.Column("error_code", sa.String(length=20), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_callbacks")),
    )


def downgrade():
    op.drop_table("status_callbacks")
