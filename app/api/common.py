"""What the API's resources share: keyset cursors, ETags and If-Match, the org's settings, and
turning models into response bodies."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from flask import current_app, request

from app.api.problems import ApiProblem
from app.extensions import db

MAX_ID = 2**31 - 1


def zone() -> str:
    return current_app.config["APP_TIMEZONE"]


def client_ip() -> str | None:
    return request.remote_addr


# -- keyset pagination on id -------------------------------------------------------------------
def parse_cursor(cursor: str | None) -> int | None:
    """A cursor is the last id of the previous page (newest first: the next page has smaller ids,
    so rows inserted meanwhile never shift it: nothing is skipped or repeated)."""
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or not 0 < int(cursor) <= 2**63 - 1:
        raise ApiProblem(422, "cursor: give the next_cursor of the previous page.", field="cursor")
    return int(cursor)


def keyset_page(query: sa.Select, id_column: Any, cursor: str | None, limit: int):
    """One page of `query` newest first by id, and the next cursor (None on the last page)."""
    after = parse_cursor(cursor)
    if after is not None:
        query = query.where(id_column < after)
    rows = list(db.session.scalars(query.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more and rows else None)


# -- ETag / If-Match ---------------------------------------------------------------------------
def etag_of(state: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


def check_if_match(current: str) -> None:
    """An edit names the version it was read at: missing → 428, stale → 412."""
    sent = request.headers.get("If-Match")
    if sent is None:
        raise ApiProblem(
            428,
            "Send If-Match with the ETag you read (GET it first), so no one's change is "
            "overwritten silently.",
            field="If-Match",
        )
    tags = [tag.strip() for tag in sent.split(",")]
    weak = [tag.removeprefix("W/") for tag in tags]
    if "*" in tags or current in weak:
        return
    raise ApiProblem(
        412,
        "It changed since you read it (someone else saved it): GET it again, then retry.",
        field="If-Match",
        headers={"ETag": current},
    )


def get_or_problem(model: Any, object_id: int, what: str) -> Any:
    found = db.session.get(model, object_id) if 0 < object_id <= MAX_ID else None
    if found is None:
        raise ApiProblem(404, f"There is no {what} {object_id}.")
    return found


def json_body() -> Any:
    """The validated JSON body; a body sent as a form (or anything but JSON) is a 415."""
    body = getattr(getattr(request, "context", None), "json", None)
    if body is None:
        raise ApiProblem(
            415, "Send the body as JSON (Content-Type: application/json).", field="body"
        )
    return body
