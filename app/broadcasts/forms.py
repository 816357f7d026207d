"""Reading the broadcast forms: the weekly schedule (plain values for the services)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time

from app.broadcasts.cadence import WEEKDAYS
from app.validation import ValidationError


def parse_schedule(form: Mapping[str, str]) -> tuple[dict[str, time | None], int]:
    """Weekday selects ("" for none, else HH:MM) and the default batch size."""
    times: dict[str, time | None] = {}
    for day in WEEKDAYS:
        raw = (form.get(day) or "").strip()
        if not raw:
            times[day] = None
            continue
        try:
            at = time.fromisoformat(raw)
        except ValueError:
            raise ValidationError(
                f"{day.capitalize()}: choose a time from the list.", day
            ) from None
        times[day] = at
    raw_size = (form.get("default_batch_size") or "").strip()
    try:
        size = int(raw_size)
    except ValueError:
        raise ValidationError(
            "The default batch size must be a whole number.", "default_batch_size"
        ) from None
    return times, size


def field_values(form: Mapping[str, str]) -> dict[str, str]:
    """The posted values as a plain dict (the services never see the request)."""
    return {key: value for key, value in form.items() if key != "csrf_token"}
