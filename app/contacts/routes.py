"""Contacts pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


@bp.get("/")
def index():
    return render_template(
        "placeholders/coming_soon.html",
        title="Contacts",
        description="Searching contacts, a timeline of every message in and out, unsubscribe and exclude toggles, and CSV import.",
    )
