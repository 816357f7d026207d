"""The app's clock: real time, or started at APP_CLOCK_START for development and browser tests
(a night-time check of quiet hours), never in production."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import ConfigError, load_config
from app.models.types import set_clock_start, utcnow


def test_a_started_clock_runs_on_from_its_start_and_goes_back_to_real_time():
    start = datetime(2026, 12, 1, 8, 46, tzinfo=UTC)
    try:
        set_clock_start(start)
        assert timedelta(0) <= utcnow() - start < timedelta(seconds=5)
    finally:
        set_clock_start(None)
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=1)


def test_app_clock_start_is_read_from_the_environment_with_its_offset():
    config = load_config({"APP_CLOCK_START": "2026-12-01T03:46:00-05:00"})
    assert config["CLOCK_START"] == datetime(2026, 12, 1, 8, 46, tzinfo=UTC)
    assert load_config({})["CLOCK_START"] is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_CLOCK_START": "tonight"}, "ISO 8601"),
        ({"APP_CLOCK_START": "2026-12-01T03:46:00"}, "UTC offset"),
        ({"APP_CLOCK_START": "2026-12-01T03:46:00+00:00", "APP_ENV": "production"}, "production"),
    ],
)
def test_a_bad_or_production_clock_start_is_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env)
