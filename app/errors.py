"""Error pages and their htmx/JSON variants: every 4xx says what to fix, a 500 says sorry."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    NotFound,
    RequestEntityTooLarge,
)

from app.api.problems import problem_response
from app.extensions import db
from app.htmx import hx_retarget, is_htmx
from app.security import FRAMEABLE_PREFIXES, UPLOAD_ENDPOINTS
from app.validation import ValidationError

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Sign in required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    422: "Check the form",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


def _render(status: int, message: str, field: str | None = None):
    if request.path == "/api" or request.path.startswith("/api/"):
        # RFC 9457 problem details, never an HTML page (404, 405, 413 and 429 included).
        headers = {"Retry-After": "60"} if status == 429 else None
        return problem_response(status, message, field=field, headers=headers)
    if request.path.startswith("/webhooks/") or request.path == "/healthz":
        response = jsonify(error=message)
        response.status_code = status
        return response
    if is_htmx():
        # htmx swaps error responses (see the htmx-config meta tag) into the flash region.
        response = make_response(
            render_template("partials/_flash.html", messages=[("error", message)]), status
        )
        return hx_retarget(response, "#flash", "innerHTML")
    # Inside Missive's frame: the sidebar's layout, and a way back into the sidebar.
    in_sidebar = request.path.startswith(FRAMEABLE_PREFIXES)
    return (
        render_template(
            "errors/error.html",
            status=status,
            title=TITLES.get(status, "Error"),
            message=message,
            layout="sidebar/base.html" if in_sidebar else "base.html",
            in_sidebar=in_sidebar,
        ),
        status,
    )


def _size(limit: int | None) -> str:
    """The body limit in words: whole megabytes as MB, anything else in KB."""
    limit = limit or 0
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    return f"{max(limit // 1024, 1)} KB"


def handle_http_error(error: HTTPException):
    status = error.code or 500
    message = error.description or TITLES.get(status, "Error")
    if isinstance(error, NotFound) and error.description == NotFound.description:
        message = "That page does not exist."
    if isinstance(error, RequestEntityTooLarge):
        what = "file" if request.endpoint in UPLOAD_ENDPOINTS else "request"
        message = f"That {what} is too large: the limit is {_size(request.max_content_length)}."
    return _render(status, message)


def handle_csrf_error(error: CSRFError):
    return _render(
        400,
        "This form has expired or did not come from this site. Reload the page and try again.",
    )


def handle_rate_limit(error: HTTPException):
    return _render(429, "Too many attempts. Wait a few minutes, then try again.")


def handle_unexpected(error: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return _render(500, "Something went wrong on our side. Nothing was saved; try again.")


def handle_validation_error(error: ValidationError):
    """A service refused the input and nothing was written: say what to fix, with a 422."""
    db.session.rollback()
    return _render(422, error.message, error.field)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(429, handle_rate_limit)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
