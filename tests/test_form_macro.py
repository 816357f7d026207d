"""macros/forms.field: a field's error, or else its hint, is tied to it for screen readers."""

from __future__ import annotations

import re

from flask import Flask, render_template_string
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired

from tests.support import by_id

TEMPLATE = (
    '{% from "macros/forms.html" import field %}{{ field(form.zip_code) }}{{ field(form.ok) }}'
)


class ZipForm(FlaskForm):
    zip_code = StringField("Zip code", validators=[DataRequired()], description="Five digits.")
    ok = BooleanField("Agreed", validators=[DataRequired(message="Tick it to go on.")])


def _attrs(html: str, dom_id: str) -> dict[str, str]:
    tag = re.search(rf'<input[^>]*id="{dom_id}"[^>]*>', html).group(0)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


def test_a_refused_field_is_invalid_and_described_by_its_error(app: Flask):
    with app.test_request_context(method="POST", data={"zip_code": ""}):
        form = ZipForm()
        assert not form.validate()
        html = render_template_string(TEMPLATE, form=form)
    for name in ("zip_code", "ok"):
        attrs = _attrs(html, name)
        assert attrs["aria-invalid"] == "true"
        assert attrs["aria-describedby"] == f"{name}-error"
        assert by_id(html, f"{name}-error").text  # the message the field points at exists
    assert "Tick it to go on." in by_id(html, "ok-error").text
    assert "zip_code-hint" not in html  # the error replaces the hint


def test_a_valid_field_is_described_by_its_hint_and_not_marked_invalid(app: Flask):
    with app.test_request_context():
        html = render_template_string(TEMPLATE, form=ZipForm())
    attrs = _attrs(html, "zip_code")
    assert "aria-invalid" not in attrs
    assert attrs["aria-describedby"] == "zip_code-hint"
    assert by_id(html, "zip_code-hint").text == "Five digits."
    # A field without a hint points at nothing.
    assert "aria-describedby" not in _attrs(html, "ok")
