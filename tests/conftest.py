"""Fixtures: one migrated PostgreSQL test database per run, a rolled-back transaction per test,
a clean Redis database per test, clients signed in with each role."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db, get_redis
from app.models import Role, User
from tests import factories
from tests.support import ROOT, TEST_DATABASE_URL, _admin_conninfo, make_test_config

PASSWORD = factories.PASSWORD


class IsolatedClient(FlaskClient):
    """Each request gets its own app context, as in production: a fresh `g` (current user,
    CSRF token) and its own session, on the test's connection (so it sees the test's rows)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def _ensure_test_database() -> None:
    name = make_url(TEST_DATABASE_URL).database
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    _ensure_test_database()
    app = create_app(make_test_config())
    with app.app_context():
        # A fresh schema from the migrations themselves, so the tests exercise them too.
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    yield app


@pytest.fixture(autouse=True)
def db_connection(app: Flask) -> Iterator[sa.Connection]:
    """Each test runs in one outer transaction; the app's commits become savepoints."""
    with app.app_context():
        engines = db.engines  # Flask-SQLAlchemy routes every session to engines[None]
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        original = db.session
        engines[None] = connection
        db.session = db._make_scoped_session({"join_transaction_mode": "create_savepoint"})
        try:
            yield connection
        finally:
            db.session.remove()
            db.session = original
            engines[None] = engine
            outer.rollback()
            connection.close()


@pytest.fixture
def make_app(db_connection: sa.Connection):
    """Another app with its own settings, on the test's connection (it sees the test's rows)."""

    def make(**overrides) -> Flask:
        other = create_app(make_test_config(WTF_CSRF_ENABLED=False, **overrides))
        other.test_client_class = IsolatedClient
        if "SQLALCHEMY_DATABASE_URI" not in overrides:
            with other.app_context():
                db.engines[None] = db_connection
        return other

    return make


@pytest.fixture(autouse=True)
def redis_conn(app: Flask) -> Iterator[Redis]:
    conn = get_redis(app)
    conn.flushdb()  # our own database number: rate-limit counters and queues start empty
    yield conn


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def csrf_enabled(app: Flask) -> Iterator[None]:
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        yield
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


@pytest.fixture(autouse=True)
def _csrf_off_by_default(app: Flask) -> None:
    # Tests post forms directly; CSRF itself is tested with the csrf_enabled fixture.
    app.config["WTF_CSRF_ENABLED"] = False


def sign_in(client: FlaskClient, user: User, password: str = PASSWORD, **extra: str):
    return client.post("/auth/login", data={"email": user.email, "password": password, **extra})


@pytest.fixture
def make_user():
    def make(role: Role = Role.VIEWER, **kwargs) -> User:
        user = factories.UserFactory(role=role, **kwargs)
        db.session.commit()
        return user

    return make


@pytest.fixture
def admin(make_user) -> User:
    return make_user(Role.ADMIN, email="admin@example.org")


@pytest.fixture
def operator(make_user) -> User:
    return make_user(Role.OPERATOR, email="operator@example.org")


@pytest.fixture
def viewer(make_user) -> User:
    return make_user(Role.VIEWER, email="viewer@example.org")


@pytest.fixture
def admin_client(client: FlaskClient, admin: User) -> FlaskClient:
    assert sign_in(client, admin).status_code == 302
    return client


@pytest.fixture
def operator_client(client: FlaskClient, operator: User) -> FlaskClient:
    assert sign_in(client, operator).status_code == 302
    return client


@pytest.fixture
def viewer_client(client: FlaskClient, viewer: User) -> FlaskClient:
    assert sign_in(client, viewer).status_code == 302
    return client
