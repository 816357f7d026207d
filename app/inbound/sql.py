"""`INSERT ... ON CONFLICT DO NOTHING` on PostgreSQL and SQLite: concurrent webhooks never 500."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db


def insert_ignore(table: sa.Table, values: dict[str, Any], conflict: list[str]) -> int | None:
    """Insert one row unless one with the same `conflict` columns exists; returns the new id,
    or None when the row was already there (another request may have inserted it a moment ago:
    the unique index decides, not a check-then-insert)."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(table.c.id)
    )
    return db.session.execute(stmt).scalar()
