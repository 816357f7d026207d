"""The broadcast pages warn before the fact when quiet hours will hold the texts, and refuse a
weekly slot inside quiet hours with a message that says why."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.extensions import db
from app.models import BroadcastSegment, ScheduleVersion, Setting, utcnow
from tests.factories import BroadcastFactory, ContactFactory, SegmentFactory
from tests.sending.test_quiet_hold import closed_window_now
from tests.support import HX, by_id

ZONE = ZoneInfo("America/Detroit")


def sendable_upcoming():
    upcoming = BroadcastFactory(first_message="Hello", second_message=None)
    segment = SegmentFactory(name="Everyone")
    ContactFactory.create_batch(3)
    upcoming.segment_links.append(BroadcastSegment(segment=segment, ratio=100, position=0))
    db.session.commit()
    return upcoming


def test_send_now_warns_when_quiet_hours_will_hold_the_texts(operator_client):
    sendable_upcoming()
    db.session.add(Setting(key="quiet_hours", value=list(closed_window_now())))
    db.session.commit()
    html = operator_client.get("/broadcasts/send-now", headers=HX).get_data(as_text=True)
    warning = by_id(html, "broadcasts-send-now-quiet").text
    local = utcnow().astimezone(ZONE)
    assert "in Detroit: texts will go out from" in warning
    assert local.strftime("%-I:") in warning  # the hour it is now in Detroit
    assert by_id(html, "broadcasts-send-now-count") == (
        '<strong id="broadcasts-send-now-count">3</strong>'
    )


def test_send_now_inside_the_window_says_nothing_about_quiet_hours(operator_client):
    sendable_upcoming()
    db.session.add(Setting(key="quiet_hours", value=None))
    db.session.commit()
    html = operator_client.get("/broadcasts/send-now", headers=HX).get_data(as_text=True)
    assert "broadcasts-send-now-quiet" not in html


def test_a_weekly_slot_in_quiet_hours_is_a_422_and_nothing_is_saved(operator_client):
    db.session.add(Setting(key="quiet_hours", value=["09:00", "20:00"]))
    db.session.commit()
    response = operator_client.post(
        "/broadcasts/schedule",
        data={"monday": "06:00", "default_batch_size": "10"},
        headers=HX,
    )
    assert response.status_code == 422
    error = by_id(response.get_data(as_text=True), "broadcasts-schedule-error").text
    assert error.startswith("Monday 6:00 AM is in quiet hours")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScheduleVersion)) == 0


def test_a_one_off_time_in_quiet_hours_is_shown_with_a_warning(operator_client):
    upcoming = BroadcastFactory()
    day = (utcnow() + timedelta(days=2)).astimezone(ZONE)
    upcoming.run_at_override = day.replace(hour=6, minute=0, second=0, microsecond=0)
    db.session.add(Setting(key="quiet_hours", value=["09:00", "20:00"]))
    db.session.commit()
    html = operator_client.get("/broadcasts/next-run", headers=HX).get_data(as_text=True)
    assert "At that time it is 6:00 AM in Detroit" in by_id(html, "broadcasts-next-run-quiet")
