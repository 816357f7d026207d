"""Request bodies are capped per endpoint (CSV uploads MAX_UPLOAD_MB, every other request
MAX_BODY_KB) with a 413 that names the limit, and the sign-in check runs before anything reads
a body."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Upload, WebhookEvent
from tests.auth.test_access import _protected_rules, _sample_url
from tests.conftest import sign_in
from tests.support import HX
from tests.webhooks.signing import HOOK_SETTINGS, hook_signature, post_missive, post_twilio

MB = 1024 * 1024


class UnreadableBody(io.RawIOBase):
    """A 50 MB request body that fails the request if anything reads it."""

    size = 50 * MB

    def __init__(self) -> None:
        self.position = 0

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = self.size if whence == io.SEEK_END else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the body of an anonymous request was read")


def csv_of(size: int) -> bytes:
    """A valid contacts CSV of about `size` bytes."""
    rows = [b"phone,name"]
    total, n = 11, 0
    while total < size:
        row = b"+1313%07d,%s" % (5550000 + n % 10000, b"x" * 40)
        rows.append(row)
        total += len(row) + 1
        n += 1
    return b"\n".join(rows) + b"\n"


def webhook_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))


# -- the sign-in check comes first -----------------------------------------------------------------
@pytest.mark.usefixtures("csrf_enabled")
def test_an_anonymous_post_is_turned_away_before_its_body_is_read(app, client):
    """Every protected POST route, with CSRF on (CSRFProtect reads the form in its own hook): an
    anonymous request of any size gets the sign-in redirect, and no byte of it is read."""
    checked = 0
    for rule in _protected_rules(app):
        if "POST" not in rule.methods:
            continue
        url = _sample_url(app, rule)
        for headers, status in (({}, 302), (HX, 401)):
            response = client.post(
                url,
                input_stream=UnreadableBody(),
                content_type="multipart/form-data; boundary=x",
                headers=headers,
            )
            assert response.status_code == status, (url, response.status_code)
            # The Missive sidebar's routes send the frame to its own sign-in.
            sign_in = "/sidebar/login" if url.startswith("/sidebar/") else "/auth/login"
            assert sign_in in (response.headers.get("Location") or response.headers["HX-Redirect"])
        checked += 1
    assert checked >= 5


@pytest.mark.usefixtures("csrf_enabled")
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"y" * (3 * MB), "application/x-www-form-urlencoded"),  # over every limit
        (b"--nope\r\n\x00\xff garbage", "multipart/form-data; boundary=x"),  # unparseable
        (b"a=\x00", "application/x-www-form-urlencoded"),  # a NUL (otherwise a 400)
        (b"{not json", "application/json"),
    ],
)
def test_an_anonymous_oversized_or_garbage_post_gets_the_login_redirect(client, data, content_type):
    response = client.post("/uploads/", data=data, content_type=content_type)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


# -- every other body is capped at MAX_BODY_KB ----------------------------------------------------
def test_the_default_cap_for_pages_is_1_mb_with_a_413_that_says_so(client, viewer):
    sign_in(client, viewer)
    response = client.post("/broadcasts/sms-count", data={"q": "y" * (MB + 10)})
    assert response.status_code == 413
    assert b"That request is too large: the limit is 1 MB." in response.data
    partial = client.post("/broadcasts/sms-count", data={"q": "y" * (MB + 10)}, headers=HX)
    assert partial.status_code == 413 and partial.headers["HX-Retarget"] == "#flash"
    assert b"the limit is 1 MB" in partial.data and b"<html" not in partial.data


def test_a_streamed_body_without_a_length_is_never_read_past_the_cap(make_app):
    """A chunked body has no Content-Length to refuse up front: Werkzeug stops reading it at the
    cap (a 413 only if more is read later), so a webhook streamed past it fails its signature
    and nothing is stored."""
    hooks = make_app(**HOOK_SETTINGS, MAX_BODY_KB=2).test_client()
    body = json.dumps({"rule": {"type": "label_change"}, "padding": "x" * 4096}).encode()
    response = hooks.post(
        "/webhooks/missive",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked", "X-Hook-Signature": hook_signature(body)},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 403
    assert webhook_count() == 0


def test_webhooks_take_up_to_the_cap_and_answer_a_json_413_past_it(make_app):
    hooks = make_app(**HOOK_SETTINGS).test_client()
    padding = {"rule": {"type": "label_change"}, "padding": "x" * (900 * 1024)}
    assert post_missive(hooks, padding).status_code == 200
    assert webhook_count() == 1

    padding["padding"] = "x" * (MB + 1)
    body = json.dumps(padding).encode()
    for path in ("/webhooks/missive", "/webhooks/missive/admin-action"):
        response = post_missive(hooks, body, path=path, signature=hook_signature(body))
        assert response.status_code == 413
        assert response.get_json() == {"error": "That request is too large: the limit is 1 MB."}
    twilio = post_twilio(hooks, "/webhooks/twilio/inbound", {"Body": "x" * (MB + 1)})
    assert twilio.status_code == 413 and "1 MB" in twilio.get_json()["error"]
    assert webhook_count() == 1  # nothing of the oversized calls was stored


# -- uploads keep their own limit --------------------------------------------------------------------
def test_an_upload_may_be_larger_than_the_page_cap(operator_client):
    content = csv_of(3 * MB // 2)
    response = operator_client.post(
        "/uploads/",
        data={"file": (io.BytesIO(content), "big.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.data[:500]
    upload = db.session.scalar(sa.select(Upload))
    assert upload.size_bytes == len(content) > MB


def test_an_upload_over_max_upload_mb_is_a_413_naming_that_limit(make_app, operator):
    app = make_app(MAX_CONTENT_LENGTH=2 * MB)
    client = app.test_client()
    sign_in(client, operator)
    response = client.post(
        "/uploads/",
        data={"file": (io.BytesIO(csv_of(3 * MB)), "huge.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert b"That file is too large: the limit is 2 MB." in response.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 0
