"""Remember the undeliverable note per Missive conversation.

`exclude_undeliverable` posts once to the conversation of each number it excludes (with the
configured undeliverable label, closing it). `undeliverable_posted_at` is set when the post is
claimed, so a second or concurrent run never posts again; a failed post clears it for the next
run. (The double-failure archive already remembers itself in `double_failure_archived_at`.)

Revision ID: 0009_undeliverable_post
Revises: 0008_label_lookup_index
Create Date: 2026-12-01 14:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_undeliverable_post"
down_revision = "0008_label_lookup_index"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("missive_conversations") as batch:
        batch.add_column(sa.Column("undeliverable_posted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("missive_conversations") as batch:
        batch.drop_column("undeliverable_posted_at")
