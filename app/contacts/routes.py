"""Contacts pages. Not built yet: the index says so plainly."""

from __future__ import annotations

from app.placeholders import coming_soon_blueprint

bp = coming_soon_blueprint(
    "contacts",
    "Contacts",
    "Searching contacts, a timeline of every message in and out, unsubscribe and exclude toggles, and CSV import.",
)
