"""Campaigns pages: the index (upcoming, sending, history), one campaign's page with its results, cancel.

The editing views (new, edit, estimate, preview, delete) live in `app/campaigns/editing.py` and
register on the same blueprint (imported at the bottom of this module)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


@bp.get("/")
def index():  # replaced by the real index
    return render_template(
        "placeholders/coming_soon.html", title="Campaigns", description="Being built."
    )


from app.campaigns import editing  # noqa: E402, F401  (registers the editing views on bp)
