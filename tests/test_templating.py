"""The readable-data filters: phone numbers by region, relative times with the exact time on
hover, and the phone region derived from the configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.config import ConfigError, phone_region
from app.contacts.phones import display_phone
from app.extensions import db
from app.models import AuditLog, CampaignStatus, utcnow
from app.templating import ago, relative_words
from tests.factories import CampaignFactory


@pytest.mark.parametrize(
    ("value", "region", "shown"),
    [
        # A US organisation reads its own numbers nationally, others internationally.
        ("+13134183686", "US", "(313) 418-3686"),
        ("+442079460958", "US", "+44 20 7946 0958"),
        ("+33612345678", "US", "+33 6 12 34 56 78"),
        # Canada shares +1: its numbers are dialled the same way from the US.
        ("+14165550123", "US", "(416) 555-0123"),
        # A UK organisation: the other way round.
        ("+442079460958", "GB", "020 7946 0958"),
        ("+447946095800", "GB", "07946 095800"),
        ("+13134183686", "GB", "+1 313-418-3686"),
        # A French one, for a third country.
        ("+33612345678", "FR", "06 12 34 56 78"),
        # No region configured: every number in international format.
        ("+13134183686", "", "+1 313-418-3686"),
        # Short codes, invalid numbers and raw values are shown exactly as given.
        ("12345", "US", "12345"),
        ("+1555", "US", "+1555"),
        ("+1313555", "US", "+1313555"),
        ("not a number", "US", "not a number"),
        ("", "US", ""),
        (None, "US", ""),
    ],
)
def test_phone_numbers_read_nationally_at_home_and_internationally_abroad(value, region, shown):
    assert display_phone(value, region) == shown


@pytest.mark.parametrize(
    ("raw", "timezone", "region"),
    [
        ("", "America/Detroit", "US"),
        ("", "America/Los_Angeles", "US"),
        ("", "Europe/London", ""),
        ("gb", "America/Detroit", "GB"),
        (" FR ", "Europe/Paris", "FR"),
    ],
)
def test_the_phone_region_comes_from_phone_region_else_an_american_time_zone(raw, timezone, region):
    assert phone_region(raw, timezone) == region


def test_an_unknown_phone_region_is_a_configuration_error():
    with pytest.raises(ConfigError, match="PHONE_REGION"):
        phone_region("XX", "America/Detroit")


NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=-20), "just now"),
        (timedelta(seconds=20), "in less than a minute"),
        (timedelta(minutes=-1), "1 minute ago"),
        (timedelta(minutes=-59, seconds=-59), "59 minutes ago"),
        (timedelta(hours=-3, minutes=-10), "3 hours ago"),
        (timedelta(hours=5), "in 5 hours"),
        (timedelta(days=2, hours=1), "in 2 days"),
        (timedelta(days=-1), "1 day ago"),
        (timedelta(days=-44), "44 days ago"),
        (timedelta(days=-46), ""),  # far away: the caller shows the date
    ],
)
def test_relative_words(delta, words):
    assert relative_words(NOW + delta, NOW) == words


def test_ago_is_a_time_element_with_the_exact_local_time_on_hover(app):
    with app.test_request_context():
        at = utcnow() - timedelta(hours=3, minutes=5)
        html = str(ago(at))
        local = at.astimezone(ZoneInfo(app.config["APP_TIMEZONE"]))
        assert html.startswith(f'<time datetime="{at.strftime("%Y-%m-%dT%H:%M:%SZ")}"')
        assert f'title="{local.strftime("%b %-d, %Y %-I:%M %p %Z")}"' in html
        assert ">3 hours ago</time>" in html
        old = utcnow() - timedelta(days=90)
        assert f">{old.astimezone(local.tzinfo).strftime('%b %-d, %Y')}</time>" in str(ago(old))
        assert ago(None) == "—" and ago(None, "never") == "never"


def test_lists_say_how_long_ago_and_how_soon_with_the_exact_time_on_hover(viewer_client):
    soon = utcnow() + timedelta(days=2, hours=1)
    CampaignFactory(status=CampaignStatus.SCHEDULED, run_at=soon)
    db.session.add(
        AuditLog(action="login", summary="Signed in", created_at=utcnow() - timedelta(hours=3))
    )
    db.session.commit()
    exact = soon.astimezone(ZoneInfo("America/Detroit")).strftime("%b %-d, %Y %-I:%M %p %Z")
    campaigns = viewer_client.get("/campaigns/").get_data(as_text=True)
    assert f'title="{exact}">in 2 days</time>' in campaigns
    audit = viewer_client.get("/audit/").get_data(as_text=True)
    assert ">3 hours ago</time>" in audit


def test_stored_text_shows_its_phone_numbers_as_pages_do(app):
    with app.test_request_context():
        from app.templating import phones_in

        assert phones_in("+13134183686 unsubscribed: texted STOP") == (
            "(313) 418-3686 unsubscribed: texted STOP"
        )
        assert phones_in("Edited +442079460958: email") == "Edited +44 20 7946 0958: email"
        # Not a number on its own: left as written.
        assert phones_in("order 12+13134183686 x+1313") == "order 12+13134183686 x+1313"
        assert phones_in("") == "" and phones_in(None) == ""


def test_the_audit_log_shows_numbers_in_national_format(viewer_client):
    db.session.add(
        AuditLog(
            action="contact.unsubscribe",
            actor="+13134183686 (inbound STOP)",
            summary="+13134183686 unsubscribed: texted STOP",
        )
    )
    db.session.commit()
    html = viewer_client.get("/audit/").get_data(as_text=True)
    assert "+13134183686" not in html
    assert "(313) 418-3686 unsubscribed: texted STOP" in html
    assert "(313) 418-3686 (inbound STOP)" in html
