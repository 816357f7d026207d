"""API tokens: made (shown once), hashed at rest, recognised by their `bc_` prefix, revoked.

Plain services: the settings page and the API's own authentication share them; the caller
commits."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.audit.services import record_audit
from app.extensions import db
from app.models import ApiToken, Role, User, utcnow
from app.validation import ValidationError

TOKEN_PREFIX = "bc_"
SHOWN_PREFIX = 10  # `bc_` and 7 characters of the secret: enough to tell tokens apart
MAX_NAME = 120
MAX_TOKENS_PER_USER = 20


def hash_token(secret: str) -> str:
    """SHA-256 of the token: it has 256 random bits, so a slow password hash adds nothing."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def can_have_tokens(user: User) -> bool:
    """Operators and admins make tokens; a viewer's work is reading the pages."""
    return user.has_role(Role.OPERATOR)


def create_token(
    user: User,
    name: str,
    *,
    expires_at: datetime | None = None,
    now: datetime | None = None,
    ip_address: str | None = None,
) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it and its secret (shown once, never stored). Audited;
    the caller commits."""
    now = now or utcnow()
    if not can_have_tokens(user):
        raise ValidationError("API tokens are for operators and admins.")
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError("Name the token after what will use it (like “CMS hook”).", "name")
    if len(name) > MAX_NAME:
        raise ValidationError(f"A token name can be at most {MAX_NAME} characters.", "name")
    if expires_at is not None and expires_at <= now:
        raise ValidationError("The expiry date has passed: choose a later one.", "expires_at")
    active = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    )
    if active >= MAX_TOKENS_PER_USER:
        raise ValidationError(
            f"You have {active} tokens: revoke one you no longer use first.", "name"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:SHOWN_PREFIX],
        created_at=now,
        expires_at=expires_at,
    )
    db.session.add(token)
    db.session.flush()
    expiry = f", expires {expires_at:%Y-%m-%d}" if expires_at else ""
    record_audit(
        "api_token.create",
        user=user,
        obj=token,
        summary=f"Created API token {name} ({token.prefix}…{expiry})",
        ip_address=ip_address,
    )
    return token, secret


def revoke_token(
    token: ApiToken, *, user: User, now: datetime | None = None, ip_address: str | None = None
) -> None:
    """Revoke a token (it stops at once); revoking twice changes nothing. Audited."""
    if token.revoked_at is not None:
        return
    token.revoked_at = now or utcnow()
    record_audit(
        "api_token.revoke",
        user=user,
        obj=token,
        summary=f"Revoked API token {token.name} ({token.prefix}…) of {token.user.email}",
        ip_address=ip_address,
    )


def find_token(secret: str) -> ApiToken | None:
    """The token with this secret, whatever its state (the caller checks `usable`)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return db.session.scalar(
        sa.select(ApiToken)
        .where(ApiToken.token_hash == hash_token(secret))
        .options(selectinload(ApiToken.user))
    )


def tokens_for(user: User) -> list[ApiToken]:
    """The tokens a person manages: their own; an admin sees everyone's."""
    query = sa.select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.id.desc())
    if not user.has_role(Role.ADMIN):
        query = query.where(ApiToken.user_id == user.id)
    return list(db.session.scalars(query))


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    """`active`, `revoked`, `expired` or `owner deactivated`: what the list says."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    if not token.user.active:
        return "owner deactivated"
    return "active"
