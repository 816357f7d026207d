"""Structured logs: one line per request with its ids (JSON or text), request ids honoured and
returned, no phone numbers or texts unless LOG_PII=on, job lines; Sentry's scrubber and set-up."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from app import create_app
from app.logs import (
    REQUEST_ID_HEADER,
    before_send,
    configure_logging,
    init_sentry,
    log_job,
    redact,
    scrub,
)
from tests.conftest import sign_in
from tests.factories import BroadcastFactory
from tests.support import make_test_config

PHONE = "+13135551234"


@pytest.fixture
def restore_logging(app) -> Iterator[None]:
    yield
    configure_logging(app.config)  # the session app's handler again


def lines(captured: str, logger: str = "broadcaster.request") -> list[dict]:
    found = []
    for line in captured.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") == logger:
            found.append(record)
    return found


def test_a_request_line_carries_the_request_id_user_and_send_in_json(
    make_app, make_user, capsys, restore_logging
):
    from app.extensions import db
    from app.models import Role

    client = make_app(LOG_FORMAT="json").test_client()
    user = make_user(Role.VIEWER)
    broadcast = BroadcastFactory()
    db.session.commit()
    assert sign_in(client, user).status_code == 302
    capsys.readouterr()
    response = client.get(f"/broadcasts/{broadcast.id}", headers={REQUEST_ID_HEADER: "abc-123"})
    assert response.headers[REQUEST_ID_HEADER] == "abc-123"
    (line,) = lines(capsys.readouterr().err)
    assert line["request_id"] == "abc-123"
    assert line["user_id"] == user.id
    assert line["broadcast_id"] == broadcast.id
    assert line["method"] == "GET" and line["path"] == f"/broadcasts/{broadcast.id}"
    assert line["status"] == response.status_code and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["message"].startswith("GET /broadcasts/")


def test_a_request_without_a_usable_id_gets_a_new_one(make_app, capsys, restore_logging):
    client = make_app(LOG_FORMAT="json").test_client()
    first = client.get("/healthz")
    second = client.get("/healthz", headers={REQUEST_ID_HEADER: "no spaces allowed"})
    ids = [first.headers[REQUEST_ID_HEADER], second.headers[REQUEST_ID_HEADER]]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert [line["request_id"] for line in lines(capsys.readouterr().err)] == ids


def test_a_webhook_line_has_no_phone_number_or_text_by_default(make_app, capsys, restore_logging):
    client = make_app(LOG_FORMAT="json").test_client()
    client.post(
        f"/webhooks/twilio/inbound?From={PHONE}",
        data={"From": PHONE, "To": "+13135559999", "Body": "my secret reply"},
    )
    captured = capsys.readouterr().err
    (line,) = lines(captured)
    assert line["path"] == "/webhooks/twilio/inbound" and "query" not in line
    assert PHONE not in captured and "13135551234" not in captured
    assert "my secret reply" not in captured


def test_phone_numbers_in_any_line_are_redacted_unless_log_pii_is_on(
    make_app, capsys, restore_logging
):
    make_app()  # text format, redacting
    logging.getLogger("broadcaster.test").warning("texting %s failed", PHONE)
    text = capsys.readouterr().err
    assert "texting +[phone] failed" in text and PHONE not in text
    assert "WARNING broadcaster.test" in text

    client = make_app(LOG_PII=True).test_client()
    logging.getLogger("broadcaster.test").warning("texting %s failed", PHONE)
    client.get(f"/healthz?who={PHONE}")
    text = capsys.readouterr().err
    assert f"texting {PHONE} failed" in text
    assert f"query=who={PHONE}" in text  # LOG_PII also logs query strings


def test_redaction_reaches_fields_tracebacks_and_national_formats(
    make_app, capsys, restore_logging
):
    make_app(LOG_FORMAT="json")
    log = logging.getLogger("broadcaster.test")
    log.info("fields", extra={"fields": {"to": [PHONE], "note": f"to {PHONE}"}})
    try:
        raise ValueError(f"bad number {PHONE} or (313) 555-1234")
    except ValueError:
        log.exception("failed")
    captured = capsys.readouterr().err
    assert PHONE not in captured and "555-1234" not in captured
    fields, failed = lines(captured, "broadcaster.test")
    assert fields["to"] == ["+[phone]"] and fields["note"] == "to +[phone]"
    assert "ValueError: bad number +[phone] or [phone]" in failed["error"]
    assert redact({"a": (PHONE,)}) == {"a": ["+[phone]"]}


def test_a_job_line_keeps_ids_and_counts_and_drops_free_text(make_app, capsys, restore_logging):
    make_app()
    log_job(
        job_id="j-1",
        func="app.jobs.sending.send_queued",
        queue="sending",
        ok=True,
        seconds=1.25,
        result={"claimed": 5, "accepted": 4, "broadcast_ids": [7], "skipped": "Hi Ann"},
        error="",
    )
    text = capsys.readouterr().err
    assert "INFO broadcaster.job job send_queued finished job_id=j-1" in text
    assert "claimed=5 accepted=4 broadcast_ids=[7]" in text and "duration_ms=1250.0" in text
    assert "Hi Ann" not in text


def test_log_format_and_level_are_checked():
    from app.config import ConfigError, load_config

    assert load_config({"LOG_FORMAT": "JSON"})["LOG_FORMAT"] == "json"
    assert load_config({})["LOG_FORMAT"] == "text" and load_config({})["LOG_PII"] is False
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of text, json"):
        load_config({"LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        load_config({"LOG_LEVEL": "loud"})


# -- Sentry ---------------------------------------------------------------------------------


def test_the_scrubber_removes_bodies_and_numbers_from_an_event():
    event = {
        "exception": {"values": [{"type": "ValueError", "value": f"no route to {PHONE}"}]},
        "request": {
            "url": "https://b.example.org/webhooks/twilio/inbound",
            "data": {"From": PHONE, "Body": "my secret reply"},
            "query_string": f"From=%2B1{PHONE[2:]}&to={PHONE}",
        },
        "extra": {"first_message": "Vote on Tuesday", "count": 3},
        "breadcrumbs": {"values": [{"message": f"sent to {PHONE}", "category": "log"}]},
    }
    cleaned = before_send(event, {})
    text = json.dumps(cleaned)
    assert PHONE not in text and "secret reply" not in text and "Vote on Tuesday" not in text
    assert cleaned["request"]["data"] == "[Filtered]"
    assert cleaned["extra"] == {"first_message": "[Filtered]", "count": 3}
    assert cleaned["exception"]["values"][0]["value"] == "no route to +[phone]"
    assert cleaned["breadcrumbs"]["values"][0]["message"] == "sent to +[phone]"
    assert scrub({"body": ""}) == {"body": ""}  # nothing to hide


def test_sentry_is_not_set_up_without_a_dsn():
    assert init_sentry(make_test_config()) is False
    create_app(make_test_config())
    assert not sentry_sdk.get_client().is_active()


class _Receiver(BaseHTTPRequestHandler):
    envelopes: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        self.envelopes.append(raw.decode("utf-8", "replace"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_sentry_with_a_dsn_sends_errors_scrubbed(restore_logging):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dsn = f"http://public@127.0.0.1:{server.server_address[1]}/1"
    try:
        create_app(make_test_config(SENTRY_DSN=dsn))
        client = sentry_sdk.get_client()
        assert client.is_active() and client.options["before_send"] is before_send
        logging.getLogger("broadcaster.test").error("could not text %s (message %s)", PHONE, 12)
        sentry_sdk.flush(timeout=5)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
        server.shutdown()
    sent = "\n".join(_Receiver.envelopes)
    assert "could not text +[phone] (message 12)" in sent
    assert PHONE not in sent
