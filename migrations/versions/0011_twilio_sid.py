"""The Twilio SID of a message sent through Missive.

Missive sends through its own Twilio integration, so our row holds Missive's draft id
(`provider_sid`, `missive_draft_id`) and no Twilio SID. Status reconciliation finds the Twilio
message through Twilio's Messages list (recipient, exact body, time window) and stores its SID
here, once, so later runs fetch it by SID. Unique: one Twilio message is never given to two rows.

Revision ID: 0011_twilio_sid
Revises: 0010_api_tokens
Create Date: 2026-12-01 14:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_twilio_sid"
down_revision = "0010_api_tokens"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("twilio_sid", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_outbound_messages_twilio_sid",
        "outbound_messages",
        ["twilio_sid"],
        unique=True,
        postgresql_where=sa.text("twilio_sid IS NOT NULL"),
        sqlite_where=sa.text("twilio_sid IS NOT NULL"),
    )


def downgrade():
    op.drop_index("uq_outbound_messages_twilio_sid", table_name="outbound_messages")
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("twilio_sid")
