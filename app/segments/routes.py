"""Segments pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from app.placeholders import coming_soon_blueprint

bp = coming_soon_blueprint(
    "segments",
    "Segments",
    "Saved audience rules with a builder that shows the live count of eligible contacts.",
)
