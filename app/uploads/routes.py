"""Uploads pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("uploads", __name__, url_prefix="/uploads")


@bp.get("/")
def index():
    return render_template(
        "placeholders/coming_soon.html",
        title="Uploads",
        description="Every CSV file uploaded, its validation report, and the rows that were rejected.",
    )
