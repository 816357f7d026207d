"""Campaigns pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


@bp.get("/")
def index():
    return render_template(
        "placeholders/coming_soon.html",
        title="Campaigns",
        description="One-off sends to segments and labels, an uploaded list, or personalized CSV rows: upcoming, new, history and results.",
    )
