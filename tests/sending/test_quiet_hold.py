"""Quiet hours as people see them: a message the claim holds is marked and counted as held
(first messages and follow-ups apart) with when it goes out, a settings change applies at the
next claim, and the warnings before the fact are pure functions of the clock and the window."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import MessageStatus, OutboundMessage, Setting, Step, utcnow
from app.sending.engine import send_batch
from app.sending.quiet import QUIET_HOLD_NOTE, quiet_warning, slot_refusal
from app.sends.stats import compute_stats
from tests.factories import BroadcastFactory, ContactFactory, OutboundMessageFactory

DETROIT = "+13135550101"
WINDOW = (time(9, 0), time(20, 0))


def closed_window_now() -> tuple[str, str]:
    """A window that is closed right now in Detroit (it opens in two hours)."""
    from zoneinfo import ZoneInfo

    local = utcnow().astimezone(ZoneInfo("America/Detroit"))
    start = (local + timedelta(hours=2)).replace(minute=0)
    end = (local + timedelta(hours=3)).replace(minute=0)
    return start.strftime("%H:%M"), end.strftime("%H:%M")


def test_a_held_first_message_and_a_held_follow_up_are_counted_apart_with_their_time(
    engine_app,
):
    app = engine_app(QUIET_HOURS=closed_window_now())
    with app.app_context():
        broadcast = BroadcastFactory(sending=True)
        person = ContactFactory(phone=DETROIT)
        other = ContactFactory(phone="+13135550102")
        OutboundMessageFactory(broadcast=broadcast, contact=person)  # queued first message
        first = OutboundMessageFactory(broadcast=broadcast, contact=other, sent=True)
        OutboundMessageFactory(
            broadcast=broadcast, contact=other, step=Step.SECOND, status=MessageStatus.QUEUED
        )
        db.session.commit()
        summary = send_batch(app)
        assert summary.held == 2 and not summary.counts
        rows = db.session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.status == MessageStatus.SCHEDULED)
        ).all()
        assert len(rows) == 2 and {r.error_message for r in rows} == {QUIET_HOLD_NOTE}
        stats = compute_stats(broadcast)
        assert (stats["first_held"], stats["follow_ups_held"]) == (1, 1)
        assert stats["first_waiting"] == 0 and stats["follow_ups_waiting"] == 1
        held_until = datetime.fromisoformat(stats["first_held_until"])
        assert timedelta(hours=1) < held_until - utcnow() < timedelta(hours=2, minutes=1)
        assert first.id


def test_a_settings_change_applies_at_the_next_claim(engine_app):
    app = engine_app(QUIET_HOURS=closed_window_now())
    with app.app_context():
        broadcast = BroadcastFactory(sending=True)
        OutboundMessageFactory(broadcast=broadcast, contact=ContactFactory(phone=DETROIT))
        db.session.add(Setting(key="quiet_hours", value=None))  # an admin turned them off
        db.session.commit()
        assert send_batch(app).counts["accepted"] == 1


def test_the_note_is_cleared_when_the_held_message_goes_out(engine_app):
    app = engine_app(QUIET_HOURS=None)
    with app.app_context():
        message = OutboundMessageFactory(
            contact=ContactFactory(phone=DETROIT), error_message=QUIET_HOLD_NOTE
        )
        db.session.commit()
        send_batch(app)
        db.session.expire_all()
        sent = db.session.get(OutboundMessage, message.id)
        assert sent.status == MessageStatus.SENT and sent.error_message is None


def test_the_warning_before_the_fact_names_the_local_time_and_the_opening():
    night = datetime(2026, 12, 1, 8, 46, tzinfo=UTC)  # 3:46 AM EST
    assert quiet_warning(night, "America/Detroit", WINDOW) == (
        "It is 3:46 AM in Detroit: texts will go out from 9:00 AM recipients' time "
        "(quiet hours); until then they are held."
    )
    day = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 11:00 AM EST
    assert quiet_warning(day, "America/Detroit", WINDOW) is None
    assert quiet_warning(night, "America/Detroit", None) is None
    evening = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 8:00 PM EST: the window has closed
    assert "It is 8:00 PM in Detroit" in quiet_warning(evening, "America/Detroit", WINDOW)
    assert "in Los Angeles" in quiet_warning(night, "America/Los_Angeles", WINDOW)


def test_a_weekly_slot_in_quiet_hours_is_refused_saying_why():
    assert slot_refusal("monday", time(9, 0), WINDOW) is None
    assert slot_refusal("monday", time(19, 45), WINDOW) is None
    refusal = slot_refusal("monday", time(6, 0), WINDOW)
    assert refusal.startswith("Monday 6:00 AM is in quiet hours: texts go out only ")
    assert "9:00 AM–8:00 PM recipients' time" in refusal and "wait until 9:00 AM" in refusal
    assert slot_refusal("friday", time(20, 0), WINDOW) is not None
    assert slot_refusal("friday", time(6, 0), None) is None
    overnight = (time(22, 0), time(6, 0))  # a window across midnight
    assert slot_refusal("friday", time(23, 0), overnight) is None
    assert slot_refusal("friday", time(12, 0), overnight) is not None
