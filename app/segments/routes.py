"""Segments pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("segments", __name__, url_prefix="/segments")


@bp.get("/")
def index():
    return render_template(
        "placeholders/coming_soon.html",
        title="Segments",
        description="Saved audience rules with a builder that shows the live count of eligible contacts.",
    )
