"""Forms for managing users."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from app.auth.services import MIN_PASSWORD_LENGTH
from app.models import Role

PASSWORD_MESSAGE = f"Use a password of at least {MIN_PASSWORD_LENGTH} characters (200 at most)."

ROLE_CHOICES = [
    SelectChoice(Role.VIEWER.value, "Viewer — reads everything"),
    SelectChoice(Role.OPERATOR.value, "Operator — also edits, schedules and sends"),
    SelectChoice(Role.ADMIN.value, "Admin — also manages users and settings"),
]


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField("Name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.OPERATOR.value)
    password = PasswordField(
        "Initial password",
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD_LENGTH, max=200, message=PASSWORD_MESSAGE),
        ],
        description=f"At least {MIN_PASSWORD_LENGTH} characters. Share it privately.",
    )


class EditUserForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Active (may sign in)")
    password = PasswordField(
        "New password",
        validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=200, message=PASSWORD_MESSAGE)],
        description="Leave empty to keep the current password.",
    )


class ApiTokenForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=120)],
        description="What will use it, like “CMS hook” or “Missive rule”.",
    )
    expires_on = DateField(
        "Expires on",
        validators=[Optional()],
        description="Optional. It stops working at the start of that day (org time zone).",
    )
