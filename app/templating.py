"""Jinja filters and globals: org-time-zone dates, numbers, percentages, plurals, links to a
send's pages, and the navigation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request, url_for

from app.sends import Send, send_kind, send_label

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


def isotime(value: str | None, fmt: str = "%b %-d, %-I:%M %p") -> str:
    """A stored ISO timestamp (statistics keep times as text) in the organisation's zone."""
    if not value:
        return "—"
    return localtime(datetime.fromisoformat(value), fmt)


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage (`0.1234` → `12.3 %`); `—` when there is none."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f} %"


def plural(count: int | None, singular: str, plural_form: str | None = None) -> str:
    """`1 person`, `2,000 people`: the count with thousands separators and the right word."""
    count = count or 0
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def quiet_hours_opening() -> str | None:
    """When the quiet-hours window opens, as "9:00 AM", or None when quiet hours are off."""
    from app.settings.services import quiet_hours

    window = quiet_hours(current_app.config["QUIET_HOURS"])
    if not window:
        return None
    hours, minutes = (int(part) for part in window[0].split(":"))
    return datetime(2000, 1, 1, hours % 24, minutes).strftime("%-I:%M %p")


def send_url(send: Send, what: str, **values) -> str:
    """A page of a broadcast or a campaign: `send_url(send, "progress", compact=1)`."""
    kind = send_kind(send)
    return url_for(f"{kind}.{what}", **{f"{kind[:-1]}_id": send.id}, **values)


def nav_active(prefix: str) -> bool:
    if prefix == "/":
        return request.path == "/"
    return request.path == prefix or request.path.startswith(prefix + "/")


def register_filters(app: Flask) -> None:
    app.add_template_filter(localtime)
    app.add_template_filter(number)
    app.add_template_filter(isotime)
    app.add_template_filter(percent)
    app.add_template_filter(plural)
    app.add_template_global(send_url)
    app.add_template_global(quiet_hours_opening)
    app.add_template_global(send_kind)
    app.add_template_global(send_label)
    app.add_template_global(nav_active)
    app.add_template_global(NAVIGATION, "NAVIGATION")
