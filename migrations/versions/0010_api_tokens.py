"""API tokens get a display prefix and an optional expiry; idempotency keys of the API.

`api_tokens` (from 0001) kept only the hash. A person must recognise a token in the list
without its secret, so the first characters (`bc_` and a few more) are kept as `prefix`;
`expires_at` is optional; `last_used_ip` shows where it was last used from.

`api_idempotency_keys` remembers the first answer to a POST that sends or creates (send now,
test send, campaign create) under its `Idempotency-Key`, per user: a retry gets the same
answer and never sends twice. The row is inserted and locked (SELECT ... FOR UPDATE) on its
own connection while the first request runs, so a concurrent retry waits for that answer. No
foreign key: the lock row must be writable before the request's own rows are committed.

Revision ID: 0010_api_tokens
Revises: 0009_undeliverable_post
Create Date: 2026-12-01 14:20:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_api_tokens"
down_revision = "0009_undeliverable_post"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("prefix", sa.String(length=16), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_ip", sa.String(length=45), nullable=True))
    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column(
            "response_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_api_idempotency_keys_user_id_key")),
    )
    op.create_index(
        "ix_api_idempotency_keys_created_at", "api_idempotency_keys", ["created_at"], unique=False
    )


def downgrade():
    op.drop_index("ix_api_idempotency_keys_created_at", table_name="api_idempotency_keys")
    op.drop_table("api_idempotency_keys")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_ip")
        batch.drop_column("expires_at")
        batch.drop_column("prefix")
