"""The factory and the configuration: settings come from the environment, creation makes no calls."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import ConfigError, database_url, load_config, parse_quiet_hours
from app.extensions import db
from tests.support import make_test_config

BASE = {"SECRET_KEY": "x"}
# Everything production mode asks for, outside Heroku.
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "a-long-random-production-secret",
    "PUBLIC_BASE_URL": "https://broadcaster.example.org",
    "PROXY_FIX_HOPS": "1",
}


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
        # Written into the sidebar's Content-Security-Policy: no other site, no new directive.
        ({"SIDEBAR_FRAME_ANCESTORS": "*"}, "SIDEBAR_FRAME_ANCESTORS must be origins"),
        ({"SIDEBAR_FRAME_ANCESTORS": "https:"}, "SIDEBAR_FRAME_ANCESTORS"),
        ({"SIDEBAR_FRAME_ANCESTORS": "https://a.example, https://b.example"}, "got 'https://a"),
        ({"SIDEBAR_FRAME_ANCESTORS": "https://a.example; script-src *"}, "SIDEBAR_FRAME"),
        ({"SIDEBAR_FRAME_ANCESTORS": " "}, "at least one origin"),
        ({"MISSIVE_JS_URL": "https://a.example/m.js https://b.example/m.js"}, "one address"),
        ({"MISSIVE_JS_URL": "https://a.example/m.js;"}, "MISSIVE_JS_URL"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config({**BASE, **env})


def test_secret_key_is_required_on_heroku():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_config({"DYNO": "web.1", "PUBLIC_BASE_URL": "https://app.example.org"})


def test_heroku_trusts_one_proxy_hop_and_uses_secure_cookies():
    config = load_config({**BASE, "DYNO": "web.1", "PUBLIC_BASE_URL": "https://app.example.org"})
    assert config["PRODUCTION"] and config["PROXY_FIX_HOPS"] == 1
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]


def test_a_complete_production_configuration_starts():
    config = load_config(PRODUCTION)
    assert config["PRODUCTION"] and not config["ON_HEROKU"]
    assert config["SECRET_KEY"] == PRODUCTION["SECRET_KEY"]
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["PROXY_FIX_HOPS"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
        ({"PUBLIC_BASE_URL": ""}, "PUBLIC_BASE_URL must be the app's public https:// address"),
        ({"PUBLIC_BASE_URL": "http://broadcaster.example.org"}, "got 'http://broadcaster"),
        ({"PUBLIC_BASE_URL": "https://"}, "PUBLIC_BASE_URL must be"),
        ({"SESSION_COOKIE_SECURE": "false"}, "SESSION_COOKIE_SECURE is off"),
        ({"PROXY_FIX_HOPS": ""}, "PROXY_FIX_HOPS is 0 or not set"),
        ({"PROXY_FIX_HOPS": "0"}, "PROXY_FIX_HOPS is 0 or not set"),
    ],
)
def test_production_mode_refuses_to_start_and_names_what_is_missing(change, message):
    with pytest.raises(ConfigError, match="Production mode") as refused:
        load_config({**PRODUCTION, **change})
    assert message in str(refused.value)
    assert str(refused.value).count("\n- ") == 1  # only what is wrong is listed


def test_production_mode_lists_every_missing_item_at_once():
    with pytest.raises(ConfigError) as refused:
        load_config({"APP_ENV": "production", "SESSION_COOKIE_SECURE": "off"})
    text = str(refused.value)
    for item in ("SECRET_KEY", "PUBLIC_BASE_URL", "SESSION_COOKIE_SECURE", "PROXY_FIX_HOPS"):
        assert f"\n- {item} " in text


def test_production_mode_never_generates_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.setattr("app.config.INSTANCE_DIR", tmp_path)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({**PRODUCTION, "SECRET_KEY": ""})
    assert not (tmp_path / "secret_key").exists()


def test_development_generates_and_keeps_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.setattr("app.config.INSTANCE_DIR", tmp_path)
    first = load_config({})["SECRET_KEY"]
    assert len(first) == 64 and load_config({})["SECRET_KEY"] == first
    config = load_config({"APP_ENV": "development"})
    assert not config["PRODUCTION"] and not config["SESSION_COOKIE_SECURE"]


def test_an_unknown_app_env_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV must be development or production"):
        load_config({**BASE, "APP_ENV": "prod"})


def test_create_app_refuses_to_start_in_production_without_its_settings(monkeypatch):
    for key in ("SECRET_KEY", "PUBLIC_BASE_URL", "PROXY_FIX_HOPS", "SESSION_COOKIE_SECURE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setattr("app.load_dotenv", lambda *args, **kwargs: None)  # no local .env
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app()


def test_sql_errors_and_logs_never_carry_bound_parameters(caplog):
    secret = "+13135550123 my-password-hash"
    app = create_app(make_test_config())
    with app.app_context():
        assert db.engine.hide_parameters
        try:
            with caplog.at_level("INFO", logger="sqlalchemy.engine"), db.engine.connect() as conn:
                with pytest.raises(sa.exc.DBAPIError) as failed:
                    conn.execute(sa.text("SELECT :secret AS leaked, 1 / 0"), {"secret": secret})
        finally:
            db.engine.dispose()
    assert "division by zero" in str(failed.value) and "AS leaked" in caplog.text
    assert "parameters hidden" in str(failed.value)
    assert secret not in str(failed.value) and secret not in caplog.text


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


def test_database_pool_size_and_overflow_are_read_for_postgresql():
    url = "postgresql://u:p@db.example.org/app"
    options = load_config({"DATABASE_URL": url})["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] == 5 and options["max_overflow"] == 10
    env = {"DATABASE_URL": url, "DATABASE_POOL_SIZE": "2", "DATABASE_MAX_OVERFLOW": "0"}
    options = load_config(env)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] == 2 and options["max_overflow"] == 0
    with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE must be at least 1"):
        load_config({**env, "DATABASE_POOL_SIZE": "0"})


def test_the_sidebars_csp_settings_take_missives_and_other_origins():
    config = load_config(BASE)
    assert config["SIDEBAR_FRAME_ANCESTORS"] == (
        "https://mail.missiveapp.com https://missiveapp.com missive:"
    )
    config = load_config(
        {
            **BASE,
            "SIDEBAR_FRAME_ANCESTORS": "'self'  https://*.missiveapp.com http://localhost:8000",
            "MISSIVE_JS_URL": "http://localhost:8001/missive.js",
        }
    )
    assert config["SIDEBAR_FRAME_ANCESTORS"] == (
        "'self' https://*.missiveapp.com http://localhost:8000"
    )
    assert config["MISSIVE_JS_URL"] == "http://localhost:8001/missive.js"


def test_each_app_counts_its_rate_limits_in_its_own_storage(app, client, viewer, redis_conn):
    from app.extensions import limiter
    from tests.conftest import sign_in

    # Another app made later in the process (one limiter object serves every app)...
    other = create_app(load_config({**BASE, "REDIS_URL": "redis://127.0.0.1:1/0"}))
    # ...keeps its own storage, and this app's counts stay in this app's Redis.
    with other.app_context():
        assert limiter.storage.storage.connection_pool.connection_kwargs["port"] == 1
    assert sign_in(client, viewer, password="wrong-password").status_code == 401
    counted = [key for key in redis_conn.scan_iter("LIMITS:*") if b"/login/" in key]
    assert counted and int(redis_conn.get(counted[0])) == 1
