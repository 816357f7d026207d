"""Campaigns pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from app.placeholders import coming_soon_blueprint

bp = coming_soon_blueprint(
    "campaigns",
    "Campaigns",
    "One-off sends to segments and labels, an uploaded list, or personalized CSV rows: upcoming, new, history and results.",
)
