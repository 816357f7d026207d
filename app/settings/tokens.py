"""Settings › API tokens: operators and admins make named tokens (the secret is shown once),
see when each was last used, and revoke them; admins see and revoke everyone's.

Registers its views on the settings blueprint (imported at the bottom of settings/routes.py)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.api.tokens import create_token, revoke_token, token_state, tokens_for
from app.extensions import db
from app.models import ApiToken, Role
from app.security import require_role
from app.settings.forms import ApiTokenForm
from app.settings.routes import bp
from app.validation import ValidationError


def _page(form: ApiTokenForm, *, secret: str | None = None, made=None, status: int = 200):
    tokens = tokens_for(current_user)
    return (
        render_template(
            "settings/api_tokens.html",
            form=form,
            tokens=[(token, token_state(token)) for token in tokens],
            secret=secret,
            made=made,
            show_owner=current_user.has_role(Role.ADMIN),
        ),
        status,
    )


@bp.get("/api-tokens")
@require_role(Role.OPERATOR)
def api_tokens():
    return _page(ApiTokenForm(formdata=None))


@bp.post("/api-tokens")
@require_role(Role.OPERATOR)
def create_api_token():
    """Make a token and show its secret once (this answer only; it is stored as a hash)."""
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _page(form, status=422)
    expires_at = None
    if form.expires_on.data:
        zone = ZoneInfo(current_app.config["APP_TIMEZONE"])
        expires_at = datetime.combine(form.expires_on.data, time(0, 0), tzinfo=zone)
    try:
        token, secret = create_token(
            current_user, form.name.data, expires_at=expires_at, ip_address=request.remote_addr
        )
    except ValidationError as exc:
        db.session.rollback()
        getattr(form, exc.field or "name", form.name).errors.append(exc.message)
        return _page(form, status=422)
    db.session.commit()
    return _page(ApiTokenForm(formdata=None), secret=secret, made=token, status=201)


@bp.post("/api-tokens/<int:token_id>/revoke")
@require_role(Role.OPERATOR)
def revoke_api_token(token_id: int):
    token = db.get_or_404(ApiToken, token_id)
    if token.user_id != current_user.id and not current_user.has_role(Role.ADMIN):
        abort(403, description="Only its owner or an admin may revoke this token.")
    revoke_token(token, user=current_user, ip_address=request.remote_addr)
    db.session.commit()
    flash(f"Revoked {token.name}: it no longer works.", "success")
    return redirect(url_for("settings.api_tokens"), 303)
