"""The quiet-hours setting is read and written in one place, and the engine follows it."""

from __future__ import annotations

from datetime import time

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog
from app.sending.quiet import quiet_window
from app.settings.services import quiet_hours, save_quiet_hours, sending_rules
from tests.factories import UserFactory


def test_without_a_saved_setting_the_configured_window_applies(app):
    assert quiet_hours(("09:00", "20:00")) == ("09:00", "20:00")
    assert quiet_hours(None) is None


def test_a_saved_window_or_off_overrides_the_configuration_and_is_audited(make_app):
    app = make_app(QUIET_HOURS=("09:00", "20:00"))
    with app.app_context():
        admin = UserFactory()
        save_quiet_hours(("10:00", "18:30"), user=admin)
        db.session.commit()
        assert quiet_window(app) == (time(10, 0), time(18, 30))
        assert ("Quiet hours", "sends only 10:00–18:30 recipient time") in sending_rules(app.config)
        save_quiet_hours(None, user=admin)
        db.session.commit()
        assert quiet_window(app) is None
        entries = db.session.scalars(
            sa.select(AuditLog).where(AuditLog.action == "settings.quiet_hours").order_by("id")
        ).all()
        assert [e.summary for e in entries] == [
            "Quiet hours: send only 10:00–18:30",
            "Quiet hours: off",
        ]
        assert entries[1].details == {"before": ["10:00", "18:30"], "after": None}
