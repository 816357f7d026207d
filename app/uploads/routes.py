"""Uploads pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from app.placeholders import coming_soon_blueprint

bp = coming_soon_blueprint(
    "uploads",
    "Uploads",
    "Every CSV file uploaded, its validation report, and the rows that were rejected.",
)
