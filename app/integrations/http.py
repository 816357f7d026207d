"""One `requests.Session` per provider and process, and how its exceptions map to send phases."""

from __future__ import annotations

import requests
import urllib3
from requests.adapters import HTTPAdapter

from app.integrations import ProviderError


def make_session(pool_size: int) -> requests.Session:
    """A keep-alive session sized for `pool_size` threads; it never retries on its own."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, pool_size), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _connection_never_carried_request(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError
    )


def transport_error(exc: requests.RequestException) -> ProviderError:
    """Classify a `requests` failure: was the request provably not sent, or may it have been?"""
    if isinstance(exc, requests.ConnectionError) and _connection_never_carried_request(exc):
        return ProviderError("not_sent", f"could not connect: {type(exc).__name__}")
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        # A read timeout or a connection dropped after the request went out: it may have arrived.
        return ProviderError("maybe_sent", f"no answer after sending: {type(exc).__name__}")
    return ProviderError("not_sent", f"request not sent: {type(exc).__name__}")


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
