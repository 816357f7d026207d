"""Writing and reading the audit log. Callers pass the actor and address; nothing here reads the request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, User

# How the change arrived when it did not come from the dashboard ("API token CMS hook"): set by
# the API around each request, so every service's entry says it without knowing about the API.
_via: ContextVar[str | None] = ContextVar("audit_via", default=None)


@contextmanager
def audit_via(channel: str | None) -> Iterator[None]:
    """Entries recorded inside say "(via <channel>)" and keep it under details["via"]."""
    reset = _via.set(channel)
    try:
        yield
    finally:
        _via.reset(reset)


def record_audit(
    action: str,
    *,
    user: User | None = None,
    actor: str | None = None,
    obj: Any = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    summary: str = "",
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditLog:
    """Add one audit entry to the session (the caller commits with the change it describes)."""
    if obj is not None:
        object_type = object_type or type(obj).__tablename__
        object_id = object_id if object_id is not None else getattr(obj, "id", None)
    via = _via.get()
    if via:
        summary = f"{summary} (via {via})"
        details = {**(details or {}), "via": via}
    entry = AuditLog(
        action=action,
        user_id=user.id if user is not None else None,
        actor=actor or (user.email if user is not None else "system"),
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        summary=summary[:500],
        details=details or {},
        ip_address=ip_address,
    )
    db.session.add(entry)
    return entry


def audit_query(search: str = "", action: str = "") -> sa.Select[tuple[AuditLog]]:
    """Newest first, optionally filtered by action and a free-text search of actor and summary."""
    query = sa.select(AuditLog).order_by(AuditLog.id.desc())
    if action:
        query = query.where(AuditLog.action == action)
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(
            sa.or_(
                sa.func.lower(AuditLog.actor).like(pattern),
                sa.func.lower(AuditLog.summary).like(pattern),
                sa.func.lower(sa.func.coalesce(AuditLog.object_type, "")).like(pattern),
            )
        )
    return query


def audit_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditLog.action).distinct().order_by(AuditLog.action)))
