"""When broadcasts run (SPEC 4.1): weekly slots in the org time zone, catch-up and cool-down.

Pure functions of times; nothing here reads the database or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
COOL_DOWN = timedelta(hours=2)
SEND_NOW_GUARD = timedelta(minutes=90)


def weekly_slots(times: dict[str, time | None], after: datetime, zone: ZoneInfo, days: int = 8):
    """Every weekly run time after `after` (exclusive) within `days`, as aware UTC datetimes.

    Local wall-clock times are kept across DST changes: 09:00 stays 09:00 in Detroit in March
    and in November. A time that does not exist on a spring-forward day (02:30) runs at the
    same distance past the change (03:30), and an ambiguous autumn time runs the first time.
    """
    local = after.astimezone(zone)
    for offset in range(days + 1):
        day = local.date() + timedelta(days=offset)
        at = times.get(WEEKDAYS[day.weekday()])
        if at is None:
            continue
        slot = datetime.combine(day, at, tzinfo=zone).astimezone(after.tzinfo)
        # A nonexistent local time converts back to a different wall clock: normalise it.
        slot = slot.astimezone(zone).astimezone(after.tzinfo)
        if slot > after:
            yield slot


def next_slot(times: dict[str, time | None], after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first weekly run time after `after`, or None when no weekday has a time."""
    return next(weekly_slots(times, after, zone), None)


@dataclass(frozen=True)
class Decision:
    """What the tick does with the upcoming broadcast now."""

    action: str  # "start", "wait", "skip" (missed beyond catch-up), "none" (nothing planned)
    run_at: datetime | None = None
    reason: str = ""


def decide(
    *,
    run_at: datetime | None,
    now: datetime,
    last_started_at: datetime | None,
    catch_up: timedelta,
) -> Decision:
    """Start, wait, or skip the run planned at `run_at` (the one-off override or the weekly slot).

    Due when `run_at <= now`; started when less than `catch_up` late and the previous broadcast
    started at least COOL_DOWN ago; a run the cool-down pushes past its catch-up window, or a
    run found too late, is skipped (and the tick records it).
    """
    if run_at is None:
        return Decision("none", reason="no weekly run time and no one-off run time")
    if run_at > now:
        return Decision("wait", run_at)
    late = now - run_at
    if late > catch_up:
        return Decision("skip", run_at, f"missed by {int(late.total_seconds() // 60)} minutes")
    if last_started_at is not None and now - last_started_at < COOL_DOWN:
        ready = last_started_at + COOL_DOWN
        if ready - run_at > catch_up:
            return Decision("skip", run_at, "the cool-down after the previous broadcast")
        return Decision("wait", run_at, "cool-down after the previous broadcast")
    return Decision("start", run_at)


def send_now_refusal(
    *, now: datetime, run_at_override: datetime | None, last_started_at: datetime | None
) -> str | None:
    """Why "send now" must not start the upcoming broadcast now, or None when it may."""
    if run_at_override is not None and now <= run_at_override < now + SEND_NOW_GUARD:
        minutes = max(1, int((run_at_override - now).total_seconds() // 60))
        return (
            f"This broadcast is already rescheduled to run in {minutes} minutes. Wait for it, or "
            "clear the one-off run time first."
        )
    if last_started_at is not None and now - last_started_at < COOL_DOWN:
        wait = last_started_at + COOL_DOWN - now
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        return (
            "The previous broadcast started less than 2 hours ago. "
            f"Send now is possible again in {minutes} minutes."
        )
    return None
