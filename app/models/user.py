"""Users of the dashboard: roles, password hashes, activity."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models.types import TimestampMixin, UTCDateTime, str_enum


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """viewer < operator < admin: a role may do everything the roles below it may."""
        return self.rank >= Role(needed).rank


class User(UserMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        # Emails are stored lower-cased, so the plain unique constraint is case-insensitive.
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"), default=Role.VIEWER)
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of the id in the session and remember-me cookies: rotating it signs out every device.
    session_token: Mapped[str] = mapped_column(sa.String(64), default=lambda: secrets.token_hex(16))

    @staticmethod
    def normalize_email(email: str) -> str:
        return email.strip().lower()

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)
        self.rotate_session_token()

    def rotate_session_token(self) -> None:
        """Invalidate every session and remember-me cookie issued so far."""
        self.session_token = secrets.token_hex(16)

    def get_id(self) -> str:  # Flask-Login stores this in the session and remember-me cookie
        return f"{self.id}:{self.session_token}"

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive users cannot sign in
        return self.active

    def has_role(self, needed: Role | str) -> bool:
        return Role(self.role).allows(Role(needed))

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"
