"""Unbound extension singletons (db, migrate, csrf, login_manager, limiter) and the Redis/RQ seam."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from flask import Flask
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
limiter = Limiter(key_func=get_remote_address, default_limits=[])


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
