"""Unbound extension singletons (db, migrate, csrf, login_manager, limiter) and the Redis/RQ seam."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# Every engine (and bind) hides bound parameters from its logs and error messages: they are
# phone numbers, message bodies and password hashes. Flask-SQLAlchemy lays
# SQLALCHEMY_ENGINE_OPTIONS over these defaults, so options that leave it out still hide them.
ENGINE_DEFAULTS: dict[str, Any] = {"hide_parameters": True}
db = SQLAlchemy(model_class=Base, engine_options=ENGINE_DEFAULTS)


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite ignores foreign keys (CASCADE, RESTRICT) unless asked, per connection."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()


class _PerApp:
    """An attribute of the limiter whose value belongs to the app being served (see AppLimiter)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, limiter: Any, owner: type | None = None) -> Any:
        if limiter is None:
            return self
        try:
            return limiter._state()[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, limiter: Any, value: Any) -> None:
        limiter._state()[self.name] = value


class AppLimiter(Limiter):
    """Flask-Limiter's Limiter, whose storage is each app's own.

    Limiter is one object for every app (the routes' decorators bind to it), and its init_app
    replaces the storage, the strategy and the fallback state on that object: every app made
    later in the process (tests make many) sent the counts of all of them to its own storage.
    An app with the default REDIS_URL thus moved the test apps' sign-in counts to 6379/0, which
    nothing resets between tests, and tests run later got 429s. Here those attributes live in
    the app (app.extensions), read and written through the app being served (or being
    initialised); outside any app, the constructor's values.
    """

    _STATE = "broadcaster.limiter"

    _storage = _PerApp()
    _limiter = _PerApp()
    _storage_options = _PerApp()
    _storage_dead = _PerApp()
    _fallback_storage = _PerApp()
    _fallback_limiter = _PerApp()
    _key_prefix = _PerApp()
    enabled = _PerApp()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_defaults"] = {}
        self.__dict__["_initialising"] = None
        super().__init__(*args, **kwargs)

    def _state(self) -> dict[str, Any]:
        if self._initialising is not None:
            return self._initialising
        if has_app_context():
            state = current_app.extensions.get(self._STATE)
            if state is not None:
                return state
        return self._defaults

    def init_app(self, app: Flask) -> None:
        # A copy of the constructor's values (the storage options are updated in place).
        state = {k: dict(v) if isinstance(v, dict) else v for k, v in self._defaults.items()}
        app.extensions[self._STATE] = state
        self.__dict__["_initialising"] = state
        try:
            super().init_app(app)
        finally:
            self.__dict__["_initialising"] = None


# The backend-check counters (name-mangled in Limiter) are the app's too.
for _name in ("_Limiter__check_backend_count", "_Limiter__last_check_backend"):
    _attribute = _PerApp()
    _attribute.__set_name__(AppLimiter, _name)
    setattr(AppLimiter, _name, _attribute)

limiter = AppLimiter(key_func=get_remote_address, default_limits=[])


def redis_connection_kwargs(url: str) -> dict[str, Any]:
    """Heroku Redis speaks `rediss://` with a self-signed certificate: accept it."""
    kwargs: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5}
    if url.startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = None
    return kwargs


def make_redis(url: str) -> Redis:
    return Redis.from_url(url, **redis_connection_kwargs(url))


def get_redis(app: Flask) -> Redis:
    """The app's Redis connection (built lazily: creating the app makes no network call)."""
    conn = app.extensions.get("redis")
    if conn is None:
        conn = make_redis(app.config["REDIS_URL"])
        app.extensions["redis"] = conn
    return conn
