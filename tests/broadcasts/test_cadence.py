"""When broadcasts run: weekly slots across DST in America/Detroit, catch-up, cool-down,
one-off run times, and the send-now guard (pure functions, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.broadcasts.cadence import decide, next_slot, send_now_refusal, weekly_slots

DETROIT = ZoneInfo("America/Detroit")
CATCH_UP = timedelta(minutes=60)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def schedule(**days: time) -> dict[str, time | None]:
    base = {
        d: None
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
    base.update(days)
    return base


def test_the_next_slot_keeps_local_time_across_the_spring_change():
    weekly = schedule(saturday=time(9, 0), sunday=time(9, 0), monday=time(9, 0))
    # Saturday 2026-03-07 09:00 EST is 14:00 UTC; Sunday 03-08 is the change; 09:00 EDT = 13:00 UTC.
    after = utc(2026, 3, 7, 12, 0)
    slots = list(weekly_slots(weekly, after, DETROIT, days=3))
    assert slots[:3] == [utc(2026, 3, 7, 14, 0), utc(2026, 3, 8, 13, 0), utc(2026, 3, 9, 13, 0)]


def test_the_next_slot_keeps_local_time_across_the_autumn_change():
    weekly = schedule(saturday=time(18, 30), sunday=time(18, 30))
    # 2026-10-31 18:30 EDT = 22:30 UTC; 2026-11-01 (back to EST) 18:30 = 23:30 UTC.
    assert next_slot(weekly, utc(2026, 10, 31, 12, 0), DETROIT) == utc(2026, 10, 31, 22, 30)
    assert next_slot(weekly, utc(2026, 10, 31, 22, 30), DETROIT) == utc(2026, 11, 1, 23, 30)


def test_a_time_that_does_not_exist_on_the_spring_day_runs_an_hour_later_in_wall_clock():
    weekly = schedule(sunday=time(2, 30))
    slot = next_slot(weekly, utc(2026, 3, 8, 0, 0), DETROIT)
    assert slot == utc(2026, 3, 8, 7, 30)  # 02:30 EST would be 07:30 UTC, shown as 03:30 EDT
    assert slot.astimezone(DETROIT).hour == 3


def test_the_ambiguous_autumn_time_runs_once_the_first_time():
    weekly = schedule(sunday=time(1, 30))
    first = next_slot(weekly, utc(2026, 11, 1, 0, 0), DETROIT)
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert next_slot(weekly, first, DETROIT) == utc(2026, 11, 8, 6, 30)  # next Sunday, EST


def test_no_time_on_any_day_means_no_slot():
    assert next_slot(schedule(), utc(2026, 1, 1), DETROIT) is None


@pytest.mark.parametrize(
    ("minutes_late", "action"),
    [(-5, "wait"), (0, "start"), (59, "start"), (60, "start"), (61, "skip"), (600, "skip")],
)
def test_a_missed_run_is_caught_up_within_the_window_and_skipped_after(minutes_late, action):
    run_at = utc(2026, 5, 4, 13, 0)
    now = run_at + timedelta(minutes=minutes_late)
    assert decide(run_at=run_at, now=now, last_started_at=None, catch_up=CATCH_UP).action == action


def test_the_cool_down_holds_a_due_run_and_skips_it_when_it_outlasts_the_catch_up():
    run_at = utc(2026, 5, 4, 13, 0)
    # Previous one started 90 minutes before the run: wait 30 minutes, then start.
    previous = run_at - timedelta(minutes=90)
    held = decide(run_at=run_at, now=run_at, last_started_at=previous, catch_up=CATCH_UP)
    assert held.action == "wait" and "cool-down" in held.reason
    later = decide(
        run_at=run_at,
        now=run_at + timedelta(minutes=30),
        last_started_at=previous,
        catch_up=CATCH_UP,
    )
    assert later.action == "start"
    # Previous one started 10 minutes before: the run would be 110 minutes late: skipped.
    skipped = decide(
        run_at=run_at, now=run_at, last_started_at=run_at - timedelta(minutes=10), catch_up=CATCH_UP
    )
    assert skipped.action == "skip" and "cool-down" in skipped.reason


def test_nothing_planned_is_nothing_to_do():
    assert (
        decide(run_at=None, now=utc(2026, 1, 1), last_started_at=None, catch_up=CATCH_UP).action
        == "none"
    )


def test_send_now_is_refused_close_to_a_one_off_run_time_and_during_the_cool_down():
    now = utc(2026, 5, 4, 13, 0)
    soon = send_now_refusal(
        now=now, run_at_override=now + timedelta(minutes=89), last_started_at=None
    )
    assert soon and "89 minutes" in soon
    assert (
        send_now_refusal(now=now, run_at_override=now + timedelta(minutes=90), last_started_at=None)
        is None
    )
    assert send_now_refusal(now=now, run_at_override=None, last_started_at=None) is None
    cooling = send_now_refusal(
        now=now, run_at_override=None, last_started_at=now - timedelta(minutes=100)
    )
    assert cooling and "less than 2 hours ago" in cooling and "21 minutes" in cooling
    assert (
        send_now_refusal(now=now, run_at_override=None, last_started_at=now - timedelta(hours=2))
        is None
    )
