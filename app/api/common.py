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


# -- JSON bodies, read strictly ---------------------------------------------------------------
def nul_field(value: Any, path: str = "") -> str | None:
    """The path of the first key or string holding a NUL (PostgreSQL text cannot hold one):
    JSON writes it `\\u0000`, so the raw-body check of app/security.py never sees it."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = nul_field(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_field(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def parse_json_text(text: str | bytes, field: str = "body") -> Any:
    """JSON text decoded, or a 400 problem saying why not (not JSON, not UTF-8, nested past
    Python's recursion limit) or naming the field that holds a NUL."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ApiProblem(400, f"{field}: the JSON is nested too deeply.", field=field) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiProblem(400, f"{field}: this is not JSON in UTF-8 ({exc}).", field=field) from None
    where = nul_field(value)
    if where:
        where = where if field == "body" else f"{field}.{where}"
        raise ApiProblem(
            400, f"{where}: remove the NUL character (\\u0000) and try again.", field=where
        )
    return value


def check_json_body() -> None:
    """Read a JSON body before spectree does: spectree reads it with `silent=True` and takes
    anything unreadable or falsy (`[]`, `null`, a body that is not UTF-8) for `{}`, and a body
    nested thousands deep raised RecursionError (a 500). Every API body is an object."""
    if not request.is_json or not request.get_data(cache=True).strip():
        return
    value = parse_json_text(request.get_data(cache=True))
    if not isinstance(value, dict):
        raise ApiProblem(422, "body: send a JSON object ({…}).", field="body")


def json_body() -> Any:
    """The validated JSON body; a body sent as a form (or anything but JSON) is a 415."""
    body = getattr(getattr(request, "context", None), "json", None)
    if body is None:
        raise ApiProblem(
            415, "Send the body as JSON (Content-Type: application/json).", field="body"
        )
    return body
