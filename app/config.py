"""Every setting, read from the environment (and `.env` in development), in one place."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT / "instance"

MISSIVE_ORIGINS = "https://mail.missiveapp.com https://missiveapp.com missive:"
MISSIVE_JS_URL = "https://integrations.missiveapp.com/missive.js"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _str(env: dict[str, str], key: str, default: str = "") -> str:
    return env.get(key, default).strip()


def _int(env: dict[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = _str(env, key)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


def _float(env: dict[str, str], key: str, default: float) -> float:
    raw = _str(env, key)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{key} must be greater than 0, got {raw!r}")
    return value


def _bool(env: dict[str, str], key: str, default: bool) -> bool:
    raw = _str(env, key).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


# A CSP source: a scheme ("missive:"), or scheme://host[:port][/path] (the host may start "*.").
_CSP_SOURCE = re.compile(r"[a-z][a-z0-9+.-]*:(//(\*\.)?[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s;,'\"]*)?)?")


def _csp_sources(env: dict[str, str], key: str, default: str, *, one: bool = False) -> str:
    """Sources written into a Content-Security-Policy (frame-ancestors, script-src): each a
    scheme or an origin, never `*`, `http:`/`https:` (any site) or a `;` that would end the
    directive and start another."""
    raw = _str(env, key, default)
    sources = raw.split()
    for source in sources:
        if source in ("'self'", "'none'") and not one:
            continue
        if source in ("http:", "https:") or not _CSP_SOURCE.fullmatch(source):
            raise ConfigError(
                f"{key} must be {'one address' if one else 'origins separated by spaces'}, such "
                f"as https://mail.missiveapp.com, never * or a bare http:/https:; got {source!r}"
            )
    if not sources or (one and len(sources) != 1):
        raise ConfigError(f"{key} must be {'one address' if one else 'at least one origin'}")
    return " ".join(sources)


def _choice(env: dict[str, str], key: str, choices: tuple[str, ...], upper: bool = False) -> str:
    """One of `choices` (the first is the default)."""
    raw = _str(env, key)
    value = (raw.upper() if upper else raw.lower()) or choices[0]
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def database_url(raw: str) -> str:
    """Accept Heroku's `postgres://` form and pick the psycopg 3 driver for PostgreSQL."""
    if not raw:
        return f"sqlite:///{INSTANCE_DIR / 'broadcaster.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def parse_quiet_hours(raw: str) -> tuple[str, str] | None:
    """`09:00-20:00` -> ("09:00", "20:00"); `off` -> None (quiet hours disabled)."""
    raw = raw.strip().lower()
    if raw in {"off", "none", "disabled"}:
        return None
    try:
        start, end = (part.strip() for part in raw.split("-"))
        for part in (start, end):
            hours, minutes = part.split(":")
            if not (0 <= int(hours) <= 24 and 0 <= int(minutes) < 60):
                raise ValueError(part)
    except ValueError as exc:
        raise ConfigError(f"QUIET_HOURS must look like 09:00-20:00 or off, got {raw!r}") from exc
    return start, end


def is_production(env: dict[str, str]) -> bool:
    """Production mode: `APP_ENV=production`, or running on Heroku (every dyno has `DYNO` set)."""
    app_env = _str(env, "APP_ENV").lower()
    if app_env not in {"", "development", "production"}:
        raise ConfigError(f"APP_ENV must be development or production, got {app_env!r}")
    return app_env == "production" or bool(env.get("DYNO"))


def production_problems(config: dict[str, Any]) -> list[str]:
    """What stops these settings from running in production, one sentence each (none: ready)."""
    problems = []
    if not config["SECRET_KEY"]:
        problems.append(
            "SECRET_KEY is not set: set it to a long random value, for example the output of "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'"
        )
    base_url = urlsplit(config["PUBLIC_BASE_URL"])
    if base_url.scheme != "https" or not base_url.hostname:
        problems.append(
            "PUBLIC_BASE_URL must be the app's public https:// address "
            f"(for example https://broadcaster.example.org), got {config['PUBLIC_BASE_URL']!r}"
        )
    if not (config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]):
        problems.append(
            "SESSION_COOKIE_SECURE is off: sign-in cookies must travel over https only "
            "(unset it, or set it to true)"
        )
    if not config["PROXY_FIX_HOPS"]:
        problems.append(
            "PROXY_FIX_HOPS is 0 or not set: set it to the number of proxies in front of the app "
            "(1 behind one load balancer or nginx; on Heroku it is 1 unless you change it)"
        )
    return problems


def _clock_start(env: dict[str, str], production: bool) -> datetime | None:
    raw = _str(env, "APP_CLOCK_START")
    if not raw:
        return None
    if production:
        raise ConfigError("APP_CLOCK_START is for development and tests: unset it in production")
    try:
        start = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"APP_CLOCK_START must be an ISO 8601 time, got {raw!r}") from None
    if start.tzinfo is None:
        raise ConfigError("APP_CLOCK_START needs a UTC offset, like 2026-12-01T08:46:00+00:00")
    return start


def _secret_key(env: dict[str, str], production: bool) -> str:
    key = _str(env, "SECRET_KEY")
    if key or production:
        return key  # production never makes one up: production_problems() names it missing
    # Development: one random key kept in instance/, so sessions survive restarts and
    # every local process (web, worker) agrees on it.
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        INSTANCE_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def phone_region(raw: str, timezone: str) -> str:
    """The organisation's phone region (`US`, `GB`): numbers of its country are shown in national
    format and its zip codes checked. PHONE_REGION, else US for an America/* time zone, else none
    (every number shown in international format)."""
    region = raw.strip().upper()
    if not region:
        return "US" if timezone.startswith("America/") else ""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"PHONE_REGION must be a country code like US or GB, got {raw!r}")
    return region


def parse_backoff(raw: str) -> tuple[int, ...]:
    """`60,300,900` → (60, 300, 900): seconds to wait before each retry; their count is the limit."""
    try:
        values = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"RETRY_BACKOFF_SECONDS must look like 60,300,900, got {raw!r}") from exc
    if not values or min(values) < 0:
        raise ConfigError(f"RETRY_BACKOFF_SECONDS must look like 60,300,900, got {raw!r}")
    return values


def load_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the settings dict from `env` (default: the process environment)."""
    if env is None:
        env = dict(os.environ)

    timezone = _str(env, "APP_TIMEZONE", "America/Detroit")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"APP_TIMEZONE {timezone!r} is not a known IANA time zone") from exc

    twilio_sid = _str(env, "TWILIO_ACCOUNT_SID")
    twilio_token = _str(env, "TWILIO_AUTH_TOKEN")
    transport = _str(env, "TRANSPORT").lower() or (
        "twilio" if twilio_sid and twilio_token else "simulator"
    )
    if transport not in {"simulator", "twilio", "missive"}:
        raise ConfigError(f"TRANSPORT must be simulator, twilio or missive, got {transport!r}")

    redis_url = _str(env, "REDIS_URL", "redis://127.0.0.1:6379/0")
    db_url = database_url(_str(env, "DATABASE_URL"))
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if db_url.startswith("postgresql"):
        # A database that does not answer is an error in seconds (so /healthz says 503), not a hang.
        engine_options["connect_args"] = {
            "connect_timeout": _int(env, "DATABASE_CONNECT_TIMEOUT", 5)
        }
        # Connections per process: at most pool size + overflow (README: Scaling out).
        engine_options["pool_size"] = _int(env, "DATABASE_POOL_SIZE", 5, minimum=1)
        engine_options["max_overflow"] = _int(env, "DATABASE_MAX_OVERFLOW", 10)
    production = is_production(env)
    secure_cookies = _bool(env, "SESSION_COOKIE_SECURE", production)

    config = {
        "SECRET_KEY": _secret_key(env, production),
        "TESTING": _bool(env, "TESTING", False),
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "REDIS_URL": redis_url,
        "APP_TIMEZONE": timezone,
        "PHONE_REGION": phone_region(_str(env, "PHONE_REGION"), timezone),
        "TRANSPORT": transport,
        "TWILIO_ACCOUNT_SID": twilio_sid,
        "TWILIO_AUTH_TOKEN": twilio_token,
        "TWILIO_FROM_NUMBER": _str(env, "TWILIO_FROM_NUMBER"),
        "TWILIO_MESSAGING_SERVICE_SID": _str(env, "TWILIO_MESSAGING_SERVICE_SID"),
        "TWILIO_API_BASE_URL": _str(env, "TWILIO_API_BASE_URL"),
        "MISSIVE_API_TOKEN": _str(env, "MISSIVE_API_TOKEN"),
        "MISSIVE_API_BASE_URL": _str(
            env, "MISSIVE_API_BASE_URL", "https://public.missiveapp.com/v1"
        ),
        "MISSIVE_ORGANIZATION_ID": _str(env, "MISSIVE_ORGANIZATION_ID"),
        "MISSIVE_FROM_NUMBER": _str(env, "MISSIVE_FROM_NUMBER"),
        "MISSIVE_WEBHOOK_SECRET": _str(env, "MISSIVE_WEBHOOK_SECRET"),
        # Signs only the staff admin action (unsubscribe/resubscribe); empty: the one above.
        "MISSIVE_ADMIN_WEBHOOK_SECRET": _str(env, "MISSIVE_ADMIN_WEBHOOK_SECRET"),
        "MISSIVE_CAMPAIGN_PARENT_LABEL_ID": _str(env, "MISSIVE_CAMPAIGN_PARENT_LABEL_ID"),
        "MISSIVE_UNDELIVERABLE_LABEL_ID": _str(env, "MISSIVE_UNDELIVERABLE_LABEL_ID"),
        "MISSIVE_ARCHIVE_LABEL_ID": _str(env, "MISSIVE_ARCHIVE_LABEL_ID"),
        "SEND_RATE_MPS": _float(env, "SEND_RATE_MPS", 1.0),
        # Twilio API reads (status reconciliation) per second, shared by every worker.
        "TWILIO_READS_PER_SECOND": _float(env, "TWILIO_READS_PER_SECOND", 20.0),
        # The engine's knobs (SPEC 6): parallel provider calls per batch, messages claimed at once,
        # retry backoff, how long a claim may stay unresolved before recovery asks the provider.
        "SEND_CONCURRENCY": _int(env, "SEND_CONCURRENCY", 8, minimum=1),
        "SEND_CLAIM_MAX": _int(env, "SEND_CLAIM_MAX", 200, minimum=1),
        "SEND_PARALLEL_JOBS": _int(env, "SEND_PARALLEL_JOBS", 4, minimum=1),
        "RETRY_BACKOFF_SECONDS": parse_backoff(_str(env, "RETRY_BACKOFF_SECONDS", "60,300,900")),
        "STALE_CLAIM_SECONDS": _int(env, "STALE_CLAIM_SECONDS", 300, minimum=1),
        "PROVIDER_CONNECT_TIMEOUT": _float(env, "PROVIDER_CONNECT_TIMEOUT", 5.0),
        "PROVIDER_READ_TIMEOUT": _float(env, "PROVIDER_READ_TIMEOUT", 20.0),
        # A job still running this long after a worker's SIGTERM is stopped (the platform's
        # SIGKILL follows at 30 s); the drain job is done long before.
        "SHUTDOWN_GRACE_SECONDS": _float(env, "SHUTDOWN_GRACE_SECONDS", 25.0),
        "SIMULATOR_STATUS_DELAY_SECONDS": _int(env, "SIMULATOR_STATUS_DELAY_SECONDS", 3),
        "REDIS_KEY_PREFIX": _str(env, "REDIS_KEY_PREFIX", "broadcaster"),
        "QUIET_HOURS": parse_quiet_hours(_str(env, "QUIET_HOURS", "09:00-20:00")),
        "PUBLIC_BASE_URL": _str(env, "PUBLIC_BASE_URL", "http://localhost:5000").rstrip("/"),
        "BROADCAST_CATCHUP_MINUTES": _int(env, "BROADCAST_CATCHUP_MINUTES", 60),
        "REPLY_WINDOW_HOURS": _int(env, "REPLY_WINDOW_HOURS", 36, minimum=1),
        # Inbound (SPEC 6.5): the answer to HELP/INFO (empty: none), and the name Missive shows
        # on the notes Broadcaster posts to conversations (opt-outs, opt-ins, admin actions).
        "HELP_REPLY": _str(env, "HELP_REPLY"),
        "MISSIVE_POST_USERNAME": _str(env, "MISSIVE_POST_USERNAME", "Broadcaster"),
        "RETENTION_DAYS": _int(env, "RETENTION_DAYS", 30, minimum=1),
        "UPLOAD_MAX_ROWS": _int(env, "UPLOAD_MAX_ROWS", 200_000, minimum=1),
        # The database role raw SQL segments run as (migration 0005 makes it where it may);
        # empty turns raw SQL segments off.
        "SEGMENT_READER_ROLE": _str(env, "SEGMENT_READER_ROLE", "broadcaster_segment_reader"),
        "BATCH_SIZE_MAX": _int(env, "BATCH_SIZE_MAX", 10_000, minimum=1),
        "SIDEBAR_FRAME_ANCESTORS": _csp_sources(env, "SIDEBAR_FRAME_ANCESTORS", MISSIVE_ORIGINS),
        # Missive's JavaScript API for iframe integrations, loaded by the sidebar pages only
        # (their CSP allows this one script); the browser tests point it at a stand-in.
        "MISSIVE_JS_URL": _csp_sources(env, "MISSIVE_JS_URL", MISSIVE_JS_URL, one=True),
        # Failed sign-ins per client address, and (looser, so nobody can lock an admin out from
        # a few addresses) per email across all addresses.
        "LOGIN_RATE_LIMIT": _str(env, "LOGIN_RATE_LIMIT", "10 per 5 minutes"),
        "LOGIN_EMAIL_RATE_LIMIT": _str(env, "LOGIN_EMAIL_RATE_LIMIT", "50 per hour"),
        # The API: requests per token, and failed authentications per client address.
        "API_RATE_LIMIT": _str(env, "API_RATE_LIMIT", "120 per minute"),
        "API_AUTH_FAILURE_LIMIT": _str(env, "API_AUTH_FAILURE_LIMIT", "20 per 5 minutes"),
        "PROXY_FIX_HOPS": _int(env, "PROXY_FIX_HOPS", 1 if env.get("DYNO") else 0),
        "ON_HEROKU": bool(env.get("DYNO")),
        "PRODUCTION": production,
        # Development and browser tests only: the app's clock starts at this ISO 8601 time and
        # runs on from there (a night-time test of quiet hours). Refused in production.
        "CLOCK_START": _clock_start(env, production),
        # Cookies and sessions.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_DURATION": timedelta(days=_int(env, "REMEMBER_DAYS", 30, minimum=1)),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        "WTF_CSRF_TIME_LIMIT": None,
        # Request bodies: CSV uploads may reach MAX_UPLOAD_MB, every other request MAX_BODY_KB.
        "MAX_CONTENT_LENGTH": _int(env, "MAX_UPLOAD_MB", 20, minimum=1) * 1024 * 1024,
        "MAX_BODY_KB": _int(env, "MAX_BODY_KB", 1024, minimum=1),
        # Rate limiting (Flask-Limiter) keeps its counters in Redis under our own prefix.
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": _str(env, "RATELIMIT_KEY_PREFIX", "broadcaster-limits"),
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Logs (one line per request and per job) and optional error reporting.
        "LOG_FORMAT": _choice(env, "LOG_FORMAT", ("text", "json")),
        "LOG_LEVEL": _choice(env, "LOG_LEVEL", ("INFO", "DEBUG", "WARNING", "ERROR"), upper=True),
        "LOG_PII": _bool(env, "LOG_PII", False),
        "SENTRY_DSN": _str(env, "SENTRY_DSN"),
        "SENTRY_ENVIRONMENT": _str(env, "SENTRY_ENVIRONMENT", "production" if production else ""),
    }
    if production and (problems := production_problems(config)):
        raise ConfigError(
            "Production mode (APP_ENV=production, or on Heroku) will not start until these are "
            "fixed:\n" + "\n".join(f"- {problem}" for problem in problems)
        )
    return config
