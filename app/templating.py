"""Jinja filters and globals: org-time-zone dates (exact and relative), phone numbers, numbers,
percentages, plurals, links to a send's pages, the navigation, and the words for stored statuses
and audit actions (app/labels.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request, url_for
from markupsafe import Markup, escape

from app.contacts.phones import display_phone
from app.labels import audit_action_label, status_label, stored_value
from app.models.types import utcnow
from app.sending.sms import describe_character
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


def relative_words(value: datetime, now: datetime) -> str:
    """`3 hours ago`, `in 2 days`, `just now`: how far `value` is from `now`, in the largest whole
    unit (minutes, hours, days up to 45 days); empty beyond that (a date reads better then)."""
    seconds = (value - now).total_seconds()
    future, seconds = seconds > 0, abs(seconds)
    if seconds < 60:
        return "in less than a minute" if future else "just now"
    for size, unit, limit in ((60, "minute", 60), (3600, "hour", 24), (86400, "day", 45)):
        amount = int(seconds // size)
        if amount < limit:
            words = f"{amount:,} {unit}{'' if amount == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    return ""


def ago(value: datetime | None, empty: str = "—") -> Markup | str:
    """A timestamp as `3 hours ago` (or `in 2 days`; the local date when further away) in a
    `<time>` whose title is the exact local time and whose datetime is the UTC instant."""
    if value is None:
        return empty
    exact = localtime(value)
    words = relative_words(value, utcnow()) or value.astimezone(org_zone()).strftime("%b %-d, %Y")
    instant = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup(f'<time datetime="{instant}" title="{escape(exact)}">{escape(words)}</time>')


def relative(value: datetime | None) -> str:
    """How far a time is from now in words (`3 hours ago`, `in 2 days`); empty when there is no
    time or it is more than 45 days away (beside an exact time, the date says it then)."""
    return relative_words(value, utcnow()) if value is not None else ""


def phone(value: str | None) -> str:
    """A stored number as people read it: national format for the organisation's country
    (PHONE_REGION), international otherwise; short codes and raw values as given."""
    return display_phone(value, current_app.config.get("PHONE_REGION", ""))


# An E.164 number inside stored text (an audit summary, a job's note): `+` and 8 to 15 digits,
# not inside a longer run of digits or a word.
_E164_IN_TEXT = re.compile(r"(?<![\w+])\+[1-9]\d{7,14}(?!\d)")


def phones_in(text: str | None) -> str:
    """Stored text (audit summaries and actors, notes) with every E.164 number in it shown as
    `phone` shows one (`+13134183686 unsubscribed` -> `(313) 418-3686 unsubscribed`)."""
    if not text:
        return text or ""
    return _E164_IN_TEXT.sub(lambda match: phone(match[0]), text)


def char_chip(char: str) -> Markup:
    """One character of the UCS-2 warning: the character itself (its name on hover), or, for one
    that shows nothing, its name and code in words (`variation selector-16 (U+FE0F)`)."""
    info = describe_character(char)
    label = f"{info.name} ({info.code})"
    if info.invisible:
        return Markup('<code class="char char--named">{}</code>').format(label)
    return Markup('<code class="char" title="{}">{}</code>').format(label, char)


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
    app.add_template_filter(ago)
    app.add_template_filter(relative)
    app.add_template_filter(phone)
    app.add_template_filter(phones_in)
    app.add_template_filter(char_chip)
    app.add_template_filter(isotime)
    app.add_template_filter(percent)
    app.add_template_filter(plural)
    app.add_template_filter(status_label)
    app.add_template_filter(stored_value)
    app.add_template_filter(audit_action_label, "action_label")
    app.add_template_global(send_url)
    app.add_template_global(quiet_hours_opening)
    app.add_template_global(send_kind)
    app.add_template_global(send_label)
    app.add_template_global(nav_active)
    app.add_template_global(NAVIGATION, "NAVIGATION")
