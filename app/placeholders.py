"""Index pages for areas that are not built yet: they say so plainly instead of pretending."""

from __future__ import annotations

from flask import Blueprint, render_template


def coming_soon_blueprint(name: str, title: str, description: str) -> Blueprint:
    """A feature's blueprint whose only page says what it will hold once it is built."""
    bp = Blueprint(name, __name__, url_prefix=f"/{name}")

    @bp.get("/")
    def index():
        return render_template(
            "placeholders/coming_soon.html", title=title, description=description
        )

    return bp
