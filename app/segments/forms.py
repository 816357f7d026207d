"""Forms for saving segments; the rule itself comes from the builder's fields (see builder.py)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class SegmentForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired(message="Give the segment a name."), Length(max=120)]
    )
    description = TextAreaField(
        "Description", validators=[Optional(), Length(max=2000)], render_kw={"rows": 2}
    )


class SqlSegmentForm(SegmentForm):
    raw_sql = TextAreaField(
        "SQL query",
        validators=[DataRequired(message="Enter a query that returns a phone_number column.")],
        description=(
            "One SELECT returning a phone_number column, over the tables listed below. It runs "
            "read-only with a 5-second limit; unsubscribed, excluded and (for broadcasts) "
            "upload-only contacts are always left out."
        ),
        render_kw={"rows": 8, "spellcheck": "false", "class": "code-input"},
    )
