"""Who may see what: the sign-in gate on every route, role checks, and the security headers."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, abort, current_app, redirect, request, url_for
from flask_login import current_user

from app.api.problems import problem_response
from app.extensions import db, login_manager
from app.htmx import hx_redirect, is_htmx
from app.models import Role, User
from app.sidebar.frame import FrameSessionInterface, cookie_refused, sidebar_page

F = TypeVar("F", bound=Callable[..., Any])

# Pages that must work inside the Missive sidebar iframe; everything else refuses framing.
FRAMEABLE_PREFIXES = ("/sidebar/",)

# The endpoints that take files keep MAX_CONTENT_LENGTH (MAX_UPLOAD_MB); every other request body
# is capped at MAX_BODY_KB.
UPLOAD_ENDPOINTS = frozenset({"uploads.create", "campaigns.upload", "api.create_campaign"})


def public(view: F) -> F:
    """Mark a view as reachable without signing in (login, /healthz, signed webhooks)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def checks_nul(view: F) -> F:
    """Mark a form view that refuses NUL characters itself, naming the field (a 422 on the form
    instead of the blanket 400 below); it must check every posted value before using it."""
    view.checks_nul = True  # type: ignore[attr-defined]
    return view


def require_role(role: Role | str) -> Callable[[F], F]:
    """Refuse (403) users whose role is below `role`. Sign-in itself is checked for every route."""
    needed = Role(role)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(needed):
                abort(403, description=f"This needs the {needed.value} role.")
            return view(*args, **kwargs)

        wrapped.required_role = needed  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def _unauthorized() -> Response:
    # In Missive's frame the dashboard's sign-in would be refused (it may not be framed): the
    # sidebar has its own, and comes back to the sidebar page afterwards.
    page = sidebar_page()
    if page is not None:
        login = url_for("sidebar.login", next=page, cookie=cookie_refused())
    else:
        login = url_for("auth.login", next=request.full_path.rstrip("?"))
    if request.path == "/api" or request.path.startswith("/api/"):
        return problem_response(401, "Sign in required: send a valid API token.")
    if is_htmx():
        response = Response("Sign in required.", status=401)
        return hx_redirect(response, login)
    return redirect(login)  # type: ignore[return-value]


def _require_login() -> Response | None:
    if request.endpoint is None or request.endpoint == "static":
        return None
    view = current_app.view_functions.get(request.endpoint)
    if view is not None and getattr(view, "is_public", False):
        return None
    if current_user.is_authenticated:
        return None
    return _unauthorized()


def _limit_body() -> None:
    """Cap this request's body before anything reads it: a Content-Length over the cap is a 413
    (app/errors.py) as soon as something reads the body; a streamed body is read no further."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        return
    limit = current_app.config["MAX_BODY_KB"] * 1024
    uploads = current_app.config.get("MAX_CONTENT_LENGTH")
    request.max_content_length = min(limit, uploads) if uploads else limit


def _reject_nul_bytes() -> None:
    """PostgreSQL text cannot hold NUL: refuse such input with a 400 instead of failing later."""
    if request.mimetype == "application/x-www-form-urlencoded":
        request.get_data(cache=True)  # keep the raw body for signature checks (webhooks)
    values = list(request.args.values())
    # A view marked checks_nul names the form field at fault itself (a 422 on its form).
    view = current_app.view_functions.get(request.endpoint or "")
    if (
        request.method not in ("GET", "HEAD", "OPTIONS")
        and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
        and not getattr(view, "checks_nul", False)
    ):
        values += list(request.form.values())
    if any("\x00" in value for value in values):
        abort(400, description="The request contains a NUL character; remove it and try again.")


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    scripts = "'self'"
    if request.path.startswith(FRAMEABLE_PREFIXES):
        ancestors = current_app.config["SIDEBAR_FRAME_ANCESTORS"]
        # Missive's JavaScript API (the selected conversation), on the sidebar's pages only.
        scripts += " " + current_app.config["MISSIVE_JS_URL"]
    else:
        ancestors = "'none'"
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        f"form-action 'self'; frame-ancestors {ancestors}",
    )
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.endpoint != "static" and current_user and current_user.is_authenticated:
        # Signed-in pages never come back from a shared cache or the back button after sign-out.
        headers.setdefault("Cache-Control", "no-store")
    return response


def register_security(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.unauthorized_handler(_unauthorized)
    app.session_interface = FrameSessionInterface()

    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        user_id, _, token = session_id.partition(":")
        if not user_id.isdigit() or not token:
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active:
            return None
        # A signed-out device, a password change or a deactivation rotated the token.
        return user if hmac.compare_digest(user.session_token, token) else None

    # First of all hooks, ahead of those the extensions registered (CSRFProtect reads the form):
    # an anonymous request is turned away before any of its body is read, and the body cap is
    # set before anything reads it.
    app.before_request_funcs.setdefault(None, [])[:0] = [_require_login, _limit_body]
    app.before_request(_reject_nul_bytes)
    app.after_request(_security_headers)
