"""Forms for editing a contact and for changing its subscription or exclusion."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class ContactForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    email = StringField(
        "Email",
        validators=[Optional(), Length(max=254, message="An email has at most 254 characters.")],
    )
    zip_code = StringField(
        "Zip code",
        validators=[Optional(), Length(max=12, message="A zip code has at most 12 characters.")],
    )
    attributes = TextAreaField(
        "Attributes",
        validators=[Optional()],
        description="One per line: name = value (from CSV columns, usable in segments).",
        render_kw={"rows": 4},
    )


class ReasonForm(FlaskForm):
    reason = StringField(
        "Reason",
        validators=[DataRequired(message="Say why, for the audit log."), Length(max=200)],
        description="Recorded in the audit log.",
    )
