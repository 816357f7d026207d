"""Signing webhook requests the way Twilio and Missive do, for tests and the benchmark."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

TWILIO_TOKEN = "twilio-test-auth-token"
MISSIVE_SECRET = "missive-test-secret"
PUBLIC_BASE_URL = "https://broadcaster.example.org"
OUR_NUMBER = "+13135559999"  # the number we send from (Twilio and Missive)
HOOK_SETTINGS = {
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "MISSIVE_WEBHOOK_SECRET": MISSIVE_SECRET,
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    "QUIET_HOURS": None,
}


def twilio_signature(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post_twilio(
    client: FlaskClient,
    path: str,
    params: dict[str, str],
    *,
    signature: str | None = None,
    base_url: str = PUBLIC_BASE_URL,
    **kwargs: Any,
):
    """POST a form as Twilio does, signed over `base_url` + path (query included)."""
    if signature is None:
        signature = twilio_signature(base_url + path, params)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
        **kwargs,
    )


def hook_signature(body: bytes, secret: str = MISSIVE_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_missive(
    client: FlaskClient,
    payload: dict[str, Any] | bytes,
    path: str = "/webhooks/missive",
    signature: str | None = None,
):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if signature is None:
        signature = hook_signature(body)
    headers = {"X-Hook-Signature": signature} if signature else {}
    return client.post(path, data=body, content_type="application/json", headers=headers)


def inbound_params(sid: str, phone: str, body: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": phone,
        "To": "+13135559999",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
