"""Broadcasts pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("broadcasts", __name__, url_prefix="/broadcasts")


@bp.get("/")
def index():
    return render_template(
        "placeholders/coming_soon.html",
        title="Broadcasts",
        description="The upcoming broadcast with its first and follow-up texts, the weekly schedule, send now, and the history of past broadcasts with their delivery statistics.",
    )
