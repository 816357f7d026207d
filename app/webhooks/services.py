"""What every webhook shares: signature checks, the webhook log, and refusing bad payloads."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import WebhookEvent, utcnow


class BadPayload(ValueError):
    """A signed request whose content we cannot use: answered 400 with this message."""


def public_url(base_url: str, path: str, query_string: bytes) -> str:
    """The URL the provider called, as it signed it: our public base (never the Host header or
    the proxy's view of the request), the path, and the query string exactly as received."""
    url = base_url.rstrip("/") + path
    if query_string:
        url += "?" + query_string.decode("latin-1")
    return url


def valid_hook_signature(secret: str, raw_body: bytes, header: str | None) -> bool:
    """Missive's `X-Hook-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, compared in
    constant time over the bytes as received (never a re-serialised payload)."""
    if not secret or not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


def payload_text(raw_body: bytes) -> str:
    # PostgreSQL text cannot hold NUL; the log keeps everything else as received.
    return raw_body.decode("utf-8", "replace").replace("\x00", "\ufffd")


def log_webhook(source: str, raw_body: bytes, outcome: str) -> None:
    """Add the call to the webhook log (kept RETENTION_DAYS); the caller commits. One Core
    insert: this runs on every webhook, the hottest path the web process has."""
    db.session.execute(
        sa.insert(WebhookEvent).values(
            source=source,
            received_at=utcnow(),
            signature_ok=True,
            payload=payload_text(raw_body),
            outcome=outcome[:200],
        )
    )


def prune_webhook_log(retention_days: int) -> int:
    """Delete webhook log entries older than the retention; returns how many. Caller commits."""
    cutoff = utcnow() - timedelta(days=retention_days)
    return (
        db.session.execute(
            sa.delete(WebhookEvent).where(WebhookEvent.received_at < cutoff)
        ).rowcount
        or 0
    )
