"""The OpenAPI 3.1 document, generated from the views' pydantic models by spectree, and the
hooks that turn spectree's validation errors into problem+json naming the field."""

from __future__ import annotations

import copy
from typing import Any

from flask import current_app
from pydantic import BaseModel
from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData

from app.api.problems import PROBLEM_MEDIA_TYPE, ApiProblem
from app.api.schemas import Problem

API_VERSION = "1.0.0"
DESCRIPTION = """The Broadcaster API: the operations of the dashboard and the Missive sidebar, for
scripts and other tools. Authenticate with a per-user token made under Settings → API tokens:
`Authorization: Bearer bc_…`. A token acts with its owner's role (viewers read; operators also
edit and send). Times are ISO 8601 with their offset. Lists page with `next_cursor`. Errors are
`application/problem+json` (RFC 9457) naming the field at fault. POSTs that send or create take
an `Idempotency-Key`; edits of the upcoming broadcast and of a campaign take `If-Match` with the
`ETag` they were read with (a stale one gets 412, a missing one 428)."""


def _field_of(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def _before(req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any) -> None:
    """A request that does not fit the model: a 422 problem naming each field at fault."""
    if error is None:
        return
    errors = [
        {"field": _field_of(item.get("loc", ())), "message": item.get("msg", "Invalid value.")}
        for item in error.errors(include_url=False)  # type: ignore[attr-defined]
    ]
    first = errors[0] if errors else {"field": "body", "message": "Invalid request."}
    raise ApiProblem(422, f"{first['field']}: {first['message']}", errors=errors)


def _after(req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any) -> None:
    if error is not None:
        current_app.logger.error("API response does not match its schema: %s", error)


def _name(model: type[BaseModel]) -> str:
    return model.__name__


api = SpecTree(
    "flask",
    mode="strict",
    title="Broadcaster API",
    version=API_VERSION,
    description=DESCRIPTION,
    before=_before,
    after=_after,
    validation_error_status=422,
    validation_error_model=Problem,
    naming_strategy=_name,
    nested_naming_strategy=lambda parent, child: child,
    security_schemes=[
        SecurityScheme(
            name="token",
            data=SecuritySchemeData(
                type="http", scheme="bearer", description="An API token (bc_…)"
            ),
        )
    ],
    security={"token": []},
)

# Headers documented on the operations that read or take them (spectree documents bodies).
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string (a UUID): a retry with the same key gets the first "
    "answer and never sends or creates twice. Kept 24 hours.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
IF_MATCH_HEADER = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": "The ETag of the object as you read it; a stale one gets 412.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
ETAG = {
    "ETag": {"description": "The version to send back in If-Match.", "schema": {"type": "string"}}
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}

# Operation id → extra header parameters; operations whose answer carries an ETag.
HEADERS: dict[str, list[dict[str, Any]]] = {}
ETAG_OPERATIONS: set[str] = set()


def takes_header(operation_id: str, header: dict[str, Any]) -> None:
    HEADERS.setdefault(operation_id, []).append(header)


# Operation id → a multipart/form-data body (spectree would validate it itself and cannot
# report errors about uploaded files, so the view checks it and the document gets it here).
MULTIPART: dict[str, type[BaseModel]] = {}


def takes_multipart(operation_id: str, model: type[BaseModel]) -> None:
    MULTIPART[operation_id] = model


def openapi_document() -> dict[str, Any]:
    """The spec spectree generates from the views, with what it cannot say: problem+json error
    bodies, the Idempotency-Key and If-Match headers, ETag and Retry-After response headers."""
    spec = copy.deepcopy(api.spec)
    spec["openapi"] = "3.1.0"
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for operations in spec["paths"].values():
        for operation in operations.values():
            if not operation.get("description"):
                operation.pop("description", None)
            operation_id = operation.get("operationId", "")
            for header in HEADERS.get(operation_id, []):
                operation.setdefault("parameters", []).append(header)
            if operation_id in MULTIPART:
                model = MULTIPART[operation_id]
                spec["components"]["schemas"][model.__name__] = model.model_json_schema()
                body = operation.setdefault("requestBody", {"content": {}, "required": True})
                body["content"]["multipart/form-data"] = {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    "encoding": {"file": {"contentType": "text/csv"}},
                }
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                content = response.get("content") or {}
                if content.get("application/json", {}).get("schema") == problem_ref:
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
                if code in ("200", "201") and operation_id in ETAG_OPERATIONS:
                    response["headers"] = ETAG
            for code, description in (
                ("400", "The request cannot be read (a NUL character, a body that is not JSON)"),
                ("401", "No valid API token"),
                ("403", "The token's role may not do this"),
                ("404", "No such object"),
                ("413", "The request body is too large"),
                ("415", "The body must be JSON"),
                ("429", "Too many requests: wait Retry-After seconds"),
            ):
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                    },
                )
            responses["429"]["headers"] = RETRY_AFTER
    return spec


def responses(ok: type[BaseModel] | None = None, status: int = 200, *errors: int) -> Response:
    """An operation's answers: `ok` on success (None: an empty 204), Problem for `errors`
    (401, 403, 404, 413, 422 and 429 are added to every operation)."""
    codes: dict[str, Any] = {f"HTTP_{code}": Problem for code in errors}
    if ok is None:
        return Response("HTTP_204", **codes)
    return Response(**{f"HTTP_{status}": ok}, **codes)
