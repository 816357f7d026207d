"""The CSV upload form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class UploadForm(FlaskForm):
    file = FileField(
        "CSV file",
        validators=[FileRequired(message="Choose a .csv file to upload.")],
        description=(
            "UTF-8 (with or without BOM), comma- or semicolon-separated. A column named phone "
            "(or number, mobile…) holds the numbers, else the first column. Name, email, zip "
            "code and any other columns are kept with the contact."
        ),
        render_kw={"accept": ".csv,text/csv"},
    )
