"""Who is calling the API: a bearer token (never the session cookie), its owner's role, its
request rate, and a rate limit on failed attempts (Flask-Limiter's storage, as for sign-in)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import current_app, g, request
from limits import parse

from app.api.problems import ApiProblem
from app.api.tokens import find_token
from app.extensions import db, limiter
from app.models import ApiToken, Role, User, utcnow

F = TypeVar("F", bound=Callable[..., Any])
LAST_USED_EVERY = 60  # seconds: the last-used time is written at most once a minute per token


def _limit_hit(limit: str, *key: str) -> int | None:
    """Count one request against `limit`; None while under it, else seconds until it resets.
    With the limits' storage down the API keeps answering (as sign-in does, SWALLOW_ERRORS)."""
    item = parse(limit)
    try:
        if limiter.limiter.hit(item, *key):
            return None
        reset, _ = limiter.limiter.get_window_stats(item, *key)
    except Exception:  # noqa: BLE001  (a storage outage must not lock everyone out)
        current_app.logger.warning("API rate limit storage unavailable", exc_info=True)
        return None
    return max(1, math.ceil(reset - time.time()))


def _too_many(retry: int, what: str) -> ApiProblem:
    return ApiProblem(
        429,
        f"{what} Wait {retry} seconds, then try again.",
        headers={"Retry-After": str(retry)},
    )


def _refuse(detail: str) -> ApiProblem:
    """A failed authentication: counted against the caller's address, then a 401."""
    limit = current_app.config["API_AUTH_FAILURE_LIMIT"]
    retry = _limit_hit(limit, "api-auth-failures", request.remote_addr or "-")
    if retry is not None:
        return _too_many(retry, "Too many failed attempts to authenticate.")
    return ApiProblem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="broadcaster"'})


def authenticate() -> None:
    """Before every API request but the document and its page: find the token, check it and
    its owner, count the request; sets `g.api_token` and the current user. Past the failed-
    attempts limit an address gets 429s for its failures, never for a valid token."""
    # Only failures are limited: a valid token keeps working from an address that someone
    # else (behind the same NAT) flooded with bad ones; a 256-bit secret is not guessed anyway.
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _refuse(
            "Send an API token: `Authorization: Bearer bc_…` (make one under Settings → API "
            "tokens). The session cookie does not authenticate the API."
        )
    token = find_token(secret.strip())
    now = utcnow()
    if token is None:
        raise _refuse("That API token is not known: check it, or make a new one.")
    if token.revoked_at is not None:
        raise _refuse(f"The API token {token.name} was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise _refuse(f"The API token {token.name} expired on {token.expires_at:%Y-%m-%d}.")
    if not token.user.active:
        raise _refuse(f"The owner of the API token {token.name} has been deactivated.")
    retry = _limit_hit(current_app.config["API_RATE_LIMIT"], "api-token", str(token.id))
    if retry is not None:
        raise _too_many(retry, f"The API token {token.name} made too many requests.")
    _touch(token, now)
    g.api_token = token
    g._login_user = token.user  # Flask-Login's current user, for this request only (no session)


def _touch(token: ApiToken, now: Any) -> None:
    """Record when (and from where) the token was last used, at most once a minute."""
    last = token.last_used_at
    if last is not None and (now - last).total_seconds() < LAST_USED_EVERY:
        return
    db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.id == token.id)
        .values(last_used_at=now, last_used_ip=request.remote_addr)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def api_user() -> User:
    return g.api_token.user


def api_token() -> ApiToken:
    return g.api_token


def needs(role: Role) -> Callable[[F], F]:
    """Refuse (403) a token whose owner's role is below `role`."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = api_user()
            if not user.has_role(role):
                raise ApiProblem(
                    403,
                    f"This needs the {role.value} role; the token's owner is a {user.role}.",
                )
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator
