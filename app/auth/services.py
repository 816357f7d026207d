"""Users: authenticate, create, update. Shared by the login page, user management and the CLI."""

from __future__ import annotations

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import Role, User, utcnow
from app.validation import ValidationError

MIN_PASSWORD_LENGTH = 10
# Checked when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def normalize_email(email: str) -> str:
    email = (email or "").strip()
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError(f"Enter a valid email address ({exc}).", "email") from exc


def check_password_strength(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"Use a password of at least {MIN_PASSWORD_LENGTH} characters.", "password"
        )


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, else None; records the sign-in time."""
    user = find_user_by_email(email or "")
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not user.check_password(password or "") or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


def create_user(email: str, password: str, role: Role | str = Role.VIEWER, name: str = "") -> User:
    """Add a new user (the caller commits). Raises ValidationError for a taken email or weak password."""
    email = normalize_email(email)
    try:
        role = Role(role)
    except ValueError as exc:
        roles = ", ".join(r.value for r in Role)
        raise ValidationError(f"Role must be one of {roles}.", "role") from exc
    check_password_strength(password)
    if find_user_by_email(email) is not None:
        raise ValidationError(f"A user with the email {email} already exists.", "email")
    user = User(email=email, name=(name or "").strip(), role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def count_active_admins() -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.role == Role.ADMIN, User.active)
        )
        or 0
    )


def update_user(
    user: User,
    *,
    acting_user: User,
    name: str | None = None,
    role: Role | str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> dict[str, tuple[object, object]]:
    """Change a user; returns what changed. Refuses to leave the organisation without an active admin."""
    changes: dict[str, tuple[object, object]] = {}
    new_role = Role(role) if role is not None else Role(user.role)
    new_active = user.active if active is None else active
    losing_admin = (
        user.role == Role.ADMIN and user.active and (new_role != Role.ADMIN or not new_active)
    )
    if losing_admin and count_active_admins() <= 1:
        raise ValidationError("Keep at least one active admin: promote someone else first.", "role")
    if user.id == acting_user.id and not new_active:
        raise ValidationError("You cannot deactivate your own account.", "active")
    if name is not None and name.strip() != user.name:
        changes["name"] = (user.name, name.strip())
        user.name = name.strip()
    if new_role != user.role:
        changes["role"] = (str(user.role), str(new_role))
        user.role = new_role
    if new_active != user.active:
        changes["active"] = (user.active, new_active)
        user.active = new_active
        if not new_active:
            user.rotate_session_token()  # reactivating later does not revive old sessions
    if password:
        check_password_strength(password)
        user.set_password(password)
        changes["password"] = ("***", "***")
    return changes


def list_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.email)))
