"""Audience: keep an upload's validated rows until its import has run.

The validation job stores the normalised valid rows of a CSV file (PostgreSQL COPY text format)
in uploads.staged_rows, so the import job neither parses nor validates the file a second time;
the import clears it when done.

Revision ID: 0002_audience
Revises: e159fceb7848
Create Date: 2026-11-24 04:00:00
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0002_audience"
down_revision = "e159fceb7848"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("uploads") as batch_op:
        batch_op.add_column(sa.Column("staged_rows", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("uploads") as batch_op:
        batch_op.drop_column("staged_rows")
