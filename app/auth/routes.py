"""Sign in and sign out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from app.audit.services import record_audit
from app.auth.forms import LoginForm
from app.auth.services import authenticate
from app.extensions import db, limiter
from app.models import User
from app.security import public

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _address_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _email_limit() -> str:
    return current_app.config["LOGIN_EMAIL_RATE_LIMIT"]


def _email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()[:254]


def _failed(response) -> bool:  # only failed attempts count against the limits
    return response.status_code >= 400


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None: sign-in only ever redirects here.

    A browser reads `//host`, `/\\host` and `\\\\host` as another site, and drops tabs and
    newlines before reading (`/<tab>/host` is `//host`), so only a plain `/path` is followed.
    """
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if target.startswith("//") or "\\" in target:
        return None
    if any(char <= " " or char == "\x7f" for char in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def _attempted_as(email: str) -> str:
    """What the audit log keeps of a failed attempt: never a password typed in the wrong box."""
    email = (email or "").strip()[:254]
    return email if "@" in email and " " not in email else "(not an email address)"


@bp.get("/login")
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm(next=request.args.get("next", ""))
    return render_template("auth/login.html", form=form)


def login_limits(view):
    """The sign-in rate limits, shared by every sign-in form (the dashboard's, the sidebar's):
    one count per client address and one per email, whichever form was used."""
    view = limiter.shared_limit(
        _email_limit, scope="login-email", key_func=_email_key, deduct_when=_failed
    )(view)
    return limiter.shared_limit(_address_limit, scope="login", deduct_when=_failed)(view)


def sign_in(form: LoginForm, *, remember: bool) -> User | None:
    """Check the submitted email and password; on success start a fresh session for the user,
    audited and committed. On failure the attempt is audited and the form says why."""
    user = authenticate(form.email.data, form.password.data)
    if user is None:
        record_audit(
            "login_failed",
            actor=_attempted_as(form.email.data),
            summary="Sign-in failed: wrong email or password",
            ip_address=request.remote_addr,
        )
        db.session.commit()
        form.password.errors.append("That email and password do not match an active account.")
        return None
    # A fresh session on sign-in, so nothing from before (a planted cookie) carries over.
    session.clear()
    login_user(user, remember=remember)
    record_audit("login", user=user, obj=user, summary="Signed in", ip_address=request.remote_addr)
    db.session.commit()
    return user


@bp.post("/login")
@public
@login_limits
def create_session():
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422
    if sign_in(form, remember=bool(form.remember.data)) is None:
        return render_template("auth/login.html", form=form), 401
    return redirect(local_path(form.next.data) or url_for("dashboard.index"))


@bp.post("/logout")
@login_required
def logout():
    sign_out("Signed out")
    return redirect(url_for("auth.login"))


def sign_out(summary: str) -> None:
    """Sign the current user out of every device, audited and committed, with a flash."""
    user = current_user._get_current_object()
    # Signing out signs out every device: remember-me cookies stolen earlier stop working too.
    user.rotate_session_token()
    record_audit("logout", user=user, obj=user, summary=summary, ip_address=request.remote_addr)
    db.session.commit()
    # Clear first: logout_user() then leaves the flag that deletes the remember-me cookie.
    session.clear()
    logout_user()
    flash("You are signed out.", "info")
