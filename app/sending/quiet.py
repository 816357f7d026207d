"""Quiet hours (SPEC 6.6): messages reach the provider only inside the recipient's local window."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from flask import Flask
from phonenumbers import timezone as phone_timezone

from app.settings.services import quiet_hours

# Written on a message the claim put back to `scheduled` because of quiet hours, so pages can
# tell "held by quiet hours" from "waiting for its time"; cleared when it is sent.
QUIET_HOLD_NOTE = "held by quiet hours"


def _parse(value: str) -> time:
    hours, minutes = (int(part) for part in value.split(":"))
    return time.max if hours == 24 else time(hours, minutes)


def quiet_window(app: Flask) -> tuple[time, time] | None:
    """The allowed sending window, or None when quiet hours are off."""
    raw = quiet_hours(app.config["QUIET_HOURS"])
    if not raw:
        return None
    start, end = raw
    return _parse(start), _parse(end)


@lru_cache(maxsize=65536)
def _zone_for_number(phone: str) -> str | None:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    return zones[0] if zones else None


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def recipient_zone(contact_zone: str | None, phone: str, org_zone: str) -> ZoneInfo:
    """The contact's own zone, else the number's (area code), else the organisation's."""
    for name in (contact_zone, _zone_for_number(phone)):
        if name and (zone := _zone(name)) is not None:
            return zone
    return _zone(org_zone) or ZoneInfo("UTC")


def next_opening(now: datetime, zone: ZoneInfo, window: tuple[time, time]) -> datetime | None:
    """None when `now` is inside the window in `zone`; otherwise when it next opens (aware UTC)."""
    start, end = window
    local = now.astimezone(zone)
    current = local.time()
    inside = start <= current < end if start <= end else (current >= start or current < end)
    if inside:
        return None
    day = local.date() if current < start else local.date() + timedelta(days=1)
    opening = datetime.combine(day, start, tzinfo=zone)
    return opening.astimezone(now.tzinfo)


def clock(at: time) -> str:
    """`9:00 AM`, `midnight` for the end of the day."""
    if at == time.max:
        return "midnight"
    return at.strftime("%-I:%M %p")


def window_label(window: tuple[time, time]) -> str:
    return f"{clock(window[0])}–{clock(window[1])}"


def inside(at: time, window: tuple[time, time]) -> bool:
    """Whether a local wall-clock time falls inside the sending window."""
    start, end = window
    return start <= at < end if start <= end else (at >= start or at < end)


def slot_refusal(day: str, at: time, window: tuple[time, time] | None) -> str | None:
    """Why a weekly slot (org time) cannot be used, or None: it falls in quiet hours, so every
    text of that broadcast would wait for the window to open."""
    if window is None or inside(at, window):
        return None
    return (
        f"{day.capitalize()} {clock(at)} is in quiet hours: texts go out only "
        f"{window_label(window)} recipients' time, so the broadcast would wait until "
        f"{clock(window[0])}. Choose a time inside that window, or change quiet hours in Settings."
    )


def quiet_warning(when: datetime, zone: str, window: tuple[time, time] | None) -> str | None:
    """What to say before a send starts at `when` outside the window in the organisation's zone:
    "It is 3:46 AM in Detroit: texts will go out from 9:00 AM recipients' time." None inside
    it, or when quiet hours are off."""
    if window is None:
        return None
    tz = _zone(zone) or ZoneInfo("UTC")
    local = when.astimezone(tz)
    if inside(local.time(), window):
        return None
    place = zone.rsplit("/", 1)[-1].replace("_", " ")
    return (
        f"It is {clock(local.time())} in {place}: texts will go out from {clock(window[0])} "
        "recipients' time (quiet hours); until then they are held."
    )
