"""`Idempotency-Key` on the POSTs that send or create: the first answer is kept (24 hours) and
replayed to every retry; two requests with one key at the same moment run it once.

The key's row is inserted and locked (`SELECT … FOR UPDATE`) on a connection of its own, held
until the first request has its answer and stores it: a concurrent retry waits on that lock,
then finds the answer. The operation itself runs on the request's session as usual (its
services commit as they do for the dashboard), so the lock survives those commits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, current_app, request

from app.api.auth import api_user
from app.api.problems import ApiProblem
from app.extensions import db
from app.models import ApiIdempotencyKey, utcnow

F = TypeVar("F", bound=Callable[..., Any])
KEEP = timedelta(hours=24)
MAX_KEY = 255
REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")
T = ApiIdempotencyKey.__table__


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(row: Any) -> Response:
    response = Response(row.response_body or "", status=row.status_code)
    for name, value in (row.response_headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: F) -> F:
    """Run `view` once per (user, Idempotency-Key); without the header it runs as usual."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY or not key.isprintable():
            raise ApiProblem(
                422,
                f"An Idempotency-Key is 1 to {MAX_KEY} printable characters.",
                field="Idempotency-Key",
            )
        user_id = api_user().id
        fingerprint = _fingerprint()
        now = utcnow()
        # The request's own transaction ends before the key's and again before its answer is
        # stored: the two never interleave (they share one connection in the tests).
        db.session.commit()
        with _key_connection() as lock:
            # Keys older than a day are forgotten: a new request may reuse them.
            lock.execute(
                sa.delete(T).where(
                    T.c.user_id == user_id, T.c.key == key, T.c.created_at < now - KEEP
                )
            )
            insert = _insert(lock.dialect.name).values(
                user_id=user_id, key=key, fingerprint=fingerprint, created_at=now
            )
            lock.execute(insert.on_conflict_do_nothing(index_elements=["user_id", "key"]))
            row = lock.execute(
                sa.select(T).where(T.c.user_id == user_id, T.c.key == key).with_for_update()
            ).one()
            if row.fingerprint != fingerprint:
                raise ApiProblem(
                    422,
                    "This Idempotency-Key was used for a different request: use a new key "
                    "for a new request.",
                    field="Idempotency-Key",
                )
            if row.status_code is not None:
                return _replay(row)
            forget = sa.delete(T).where(T.c.id == row.id, T.c.status_code.is_(None))
            try:
                response = current_app.make_response(view(*args, **kwargs))
            except ApiProblem as problem:
                response = problem.response()
            except Exception:
                lock.execute(forget)  # nothing kept: a retry runs it again
                raise
            if response.status_code >= 400:
                db.session.rollback()
            else:
                db.session.commit()
            if response.status_code >= 500 or response.status_code == 429:
                lock.execute(forget)
                return response
            lock.execute(
                sa.update(T)
                .where(T.c.id == row.id)
                .values(
                    status_code=response.status_code,
                    response_body=response.get_data(as_text=True),
                    response_headers={
                        name: response.headers[name]
                        for name in REPLAYED_HEADERS
                        if name in response.headers
                    },
                    completed_at=utcnow(),
                )
            )
            return response

    return wrapped  # type: ignore[return-value]


@contextmanager
def _key_connection() -> Iterator[sa.Connection]:
    """A connection of its own, in one transaction committed at the end (its lock held until
    then). The tests route every session onto one connection inside an outer transaction:
    there the key's rows simply go on that connection."""
    bind = db.engines[None]
    if isinstance(bind, sa.Connection):
        yield bind
        return
    if bind.dialect.name == "sqlite":
        # SQLite (development) has one writer at a time: a held write would block the request's
        # own writes, so each statement commits at once (requests there are not concurrent).
        with bind.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
        return
    with bind.connect() as connection:
        with connection.begin():
            yield connection


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(T)
