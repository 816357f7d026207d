"""API errors as `application/problem+json` (RFC 9457): a title, the status, what to fix, and
the field at fault. Every error under /api/ (404, 405, 413 and 429 included) goes through here."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised anywhere in an API view: answered as problem+json with this status."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.title = title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> Response:
        return problem_response(
            self.status,
            self.detail,
            field=self.field,
            title=self.title,
            errors=self.errors,
            headers=self.headers,
            extra=self.extra,
        )


def problem_body(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if errors is None:
        errors = [{"field": field, "message": detail}] if field else []
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "field": field or (errors[0]["field"] if errors else None),
        "errors": errors,
    }
    body.update(extra or {})
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body = problem_body(status, detail, field=field, title=title, errors=errors, extra=extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
