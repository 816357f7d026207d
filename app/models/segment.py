"""Segments: saved, named rules (or legacy raw SQL) that select contacts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import JSONType, TimestampMixin

if TYPE_CHECKING:
    from app.models.user import User


def empty_rule() -> dict[str, Any]:
    return {"all": []}


class Segment(TimestampMixin, db.Model):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType, default=empty_rule)
    raw_sql: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    created_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<Segment {self.name}>"
