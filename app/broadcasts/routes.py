"""Broadcasts pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from app.placeholders import coming_soon_blueprint

bp = coming_soon_blueprint(
    "broadcasts",
    "Broadcasts",
    "The upcoming broadcast with its first and follow-up texts, the weekly schedule, send now, and the history of past broadcasts with their delivery statistics.",
)
