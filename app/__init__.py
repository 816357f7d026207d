"""The application factory: configuration, then small register_* helpers; nothing else."""

from __future__ import annotations

from typing import Any

from dotenv import load_dotenv
from flask import Flask

from app.config import INSTANCE_DIR, ROOT, load_config


def create_app(config: dict[str, Any] | None = None, **overrides: Any) -> Flask:
    """Build the app. `config` replaces the environment-derived settings; `overrides` patch them."""
    if config is None:
        load_dotenv(ROOT / ".env", override=False)
        config = load_config()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(INSTANCE_DIR),
    )
    app.config.update(config)
    app.config.update(overrides)
    register_clock(app)
    register_logging(app)

    from app.cli import register_cli
    from app.errors import register_error_handlers
    from app.security import register_security

    register_extensions(app)
    register_security(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_cli(app)
    register_template_helpers(app)
    return app


def register_clock(app: Flask) -> None:
    """Real time, unless APP_CLOCK_START moves the clock (development, browser tests)."""
    from app.models.types import set_clock_start

    if app.config.get("CLOCK_START") is not None:
        set_clock_start(app.config["CLOCK_START"])


def register_logging(app: Flask) -> None:
    """Structured log lines (LOG_FORMAT, LOG_PII), request ids, and Sentry when SENTRY_DSN is set."""
    from app.logs import configure_logging, init_sentry, register_request_logging

    configure_logging(app.config)
    register_request_logging(app)
    init_sentry(app.config)


def register_extensions(app: Flask) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app import models  # noqa: F401  (every model known to the metadata and migrations)
    from app.extensions import (
        csrf,
        db,
        limiter,
        login_manager,
        migrate,
        redis_connection_kwargs,
    )

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", redis_connection_kwargs(app.config["REDIS_URL"])
    )
    limiter.init_app(app)
    hops = app.config.get("PROXY_FIX_HOPS", 0)
    if hops:
        # Behind Heroku's router: trust its X-Forwarded-For/Proto so rate limits, audit IPs and
        # secure cookies see the client's view. Not X-Forwarded-Host (a client could set it):
        # absolute URLs come from PUBLIC_BASE_URL.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def register_blueprints(app: Flask) -> None:
    from app.api.routes import bp as api_bp
    from app.audit.routes import bp as audit_bp
    from app.auth.routes import bp as auth_bp
    from app.broadcasts.routes import bp as broadcasts_bp
    from app.campaigns.routes import bp as campaigns_bp
    from app.contacts.routes import bp as contacts_bp
    from app.dashboard.routes import bp as dashboard_bp
    from app.segments.routes import bp as segments_bp
    from app.settings.routes import bp as settings_bp
    from app.sidebar.routes import bp as sidebar_bp
    from app.system.routes import bp as system_bp
    from app.system.routes import health_bp
    from app.uploads.routes import bp as uploads_bp
    from app.webhooks.routes import bp as webhooks_bp

    for bp in (
        auth_bp,
        dashboard_bp,
        broadcasts_bp,
        campaigns_bp,
        segments_bp,
        contacts_bp,
        uploads_bp,
        system_bp,
        health_bp,
        settings_bp,
        audit_bp,
        webhooks_bp,
        sidebar_bp,
        api_bp,
    ):
        app.register_blueprint(bp)


def register_template_helpers(app: Flask) -> None:
    from app.templating import register_filters

    register_filters(app)
