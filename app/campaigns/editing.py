"""Campaigns editing views: new, edit, the live estimate, the confirmation preview, delete."""

from __future__ import annotations

from app.campaigns.routes import bp  # noqa: F401
