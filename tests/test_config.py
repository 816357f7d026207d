"""The factory and the configuration: settings come from the environment, creation makes no calls."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import ConfigError, database_url, load_config, parse_quiet_hours

BASE = {"SECRET_KEY": "x"}


def test_heroku_postgres_url_is_rewritten_for_psycopg3():
    assert database_url("postgres://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert database_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"


def test_default_database_is_sqlite_in_instance_folder():
    url = load_config(BASE)["SQLALCHEMY_DATABASE_URI"]
    assert url.startswith("sqlite:///") and url.endswith("instance/broadcaster.db")


def test_transport_defaults_to_simulator_without_twilio_credentials():
    assert load_config(BASE)["TRANSPORT"] == "simulator"


def test_transport_defaults_to_twilio_when_credentials_are_set():
    config = load_config({**BASE, "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"})
    assert config["TRANSPORT"] == "twilio"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRANSPORT": "carrier-pigeon"}, "TRANSPORT must be"),
        ({"APP_TIMEZONE": "Mars/Olympus"}, "APP_TIMEZONE"),
        ({"SEND_RATE_MPS": "fast"}, "SEND_RATE_MPS"),
        ({"SEND_RATE_MPS": "0"}, "SEND_RATE_MPS"),
        ({"REPLY_WINDOW_HOURS": "-1"}, "REPLY_WINDOW_HOURS"),
        ({"QUIET_HOURS": "9 to 5"}, "QUIET_HOURS"),
        ({"SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config({**BASE, **env})


def test_secret_key_is_required_on_heroku():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"DYNO": "web.1"})


def test_heroku_trusts_one_proxy_hop_and_uses_secure_cookies():
    config = load_config({**BASE, "DYNO": "web.1"})
    assert config["PROXY_FIX_HOPS"] == 1
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]


def test_quiet_hours_parse_and_can_be_turned_off():
    assert parse_quiet_hours("09:00-20:00") == ("09:00", "20:00")
    assert parse_quiet_hours("off") is None


def test_defaults_follow_the_spec():
    config = load_config(BASE)
    assert config["APP_TIMEZONE"] == "America/Detroit"
    assert config["BROADCAST_CATCHUP_MINUTES"] == 60
    assert config["REPLY_WINDOW_HOURS"] == 36
    assert config["UPLOAD_MAX_ROWS"] == 200_000
    assert config["QUIET_HOURS"] == ("09:00", "20:00")
    assert "missiveapp.com" in config["SIDEBAR_FRAME_ANCESTORS"]


def test_create_app_makes_no_network_calls():
    # Neither the database nor Redis exists at these addresses; creating the app must not care.
    app = create_app(
        load_config(
            {
                **BASE,
                "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                "REDIS_URL": "redis://127.0.0.1:1/0",
            }
        )
    )
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert "redis" not in app.extensions  # built lazily, on first use


def test_overrides_patch_the_configuration():
    app = create_app(load_config(BASE), TESTING=True, SEND_RATE_MPS=12.0)
    assert app.testing and app.config["SEND_RATE_MPS"] == 12.0


def test_every_feature_blueprint_is_registered(app):
    expected = {
        "auth",
        "dashboard",
        "broadcasts",
        "campaigns",
        "segments",
        "contacts",
        "uploads",
        "system",
        "health",
        "settings",
        "audit",
    }
    assert expected <= set(app.blueprints)
