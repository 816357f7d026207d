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
