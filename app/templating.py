"""Jinja filters and globals: org-time-zone dates, numbers, and the navigation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request

# (endpoint, label, URL prefix that marks it active). The order is the menu's order.
NAVIGATION = (
    ("dashboard.index", "Overview", "/"),
    ("broadcasts.index", "Broadcasts", "/broadcasts"),
    ("campaigns.index", "Campaigns", "/campaigns"),
    ("segments.index", "Segments", "/segments"),
    ("contacts.index", "Contacts", "/contacts"),
    ("uploads.index", "Uploads", "/uploads"),
    ("system.index", "System", "/system"),
    ("settings.index", "Settings", "/settings"),
    ("audit.index", "Audit log", "/audit"),
)


def org_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["APP_TIMEZONE"])


def localtime(value: datetime | None, fmt: str = "%b %-d, %Y %-I:%M %p") -> str:
    """A UTC timestamp shown in the organisation's time zone, with the zone's abbreviation."""
    if value is None:
        return "—"
    local = value.astimezone(org_zone())
    return f"{local.strftime(fmt)} {local.strftime('%Z')}"


def number(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}"


def nav_active(prefix: str) -> bool:
    if prefix == "/":
        return request.path == "/"
    return request.path == prefix or request.path.startswith(prefix + "/")


def register_filters(app: Flask) -> None:
    app.add_template_filter(localtime)
    app.add_template_filter(number)
    app.add_template_global(nav_active)
    app.add_template_global(NAVIGATION, "NAVIGATION")
