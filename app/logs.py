"""Structured logs: one line per request and per job (JSON or text), request ids, PII redaction, Sentry."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, request

# E.164-looking numbers (`+13135551234`), also inside longer text; the safety net for any line.
PHONE_PATTERN = re.compile(r"\+[1-9]\d{6,14}")
REDACTED_PHONE = "+[phone]"
# And North American numbers as people write them: (313) 555-1234, 313-555-1234, 313.555.1234.
NATIONAL_PATTERN = re.compile(r"\(\d{3}\)\s?\d{3}-\d{4}\b|\b\d{3}[-.]\d{3}[-.]\d{4}\b")
# An incoming X-Request-ID (Heroku's router sets one) is kept when it looks like an id.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:/+=-]{1,200}$")
REQUEST_ID_HEADER = "X-Request-ID"
# URL parts that name a send, a person or a record, logged with the request (ids only).
ID_ARGS = ("broadcast_id", "campaign_id", "contact_id", "upload_id", "segment_id", "message_id")
_HANDLER_MARK = "_broadcaster_handler"

request_log = logging.getLogger("broadcaster.request")
job_log = logging.getLogger("broadcaster.job")


def redact_text(text: str) -> str:
    return NATIONAL_PATTERN.sub("[phone]", PHONE_PATTERN.sub(REDACTED_PHONE, text))


def redact(value: Any) -> Any:
    """`value` with every E.164-looking number replaced, in strings, lists and dicts."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


class RedactPhones(logging.Filter):
    """Rewrites each record with phone numbers replaced (its message, arguments, fields and
    traceback) before our handler writes it. Installed unless LOG_PII=on."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if isinstance(getattr(record, "fields", None), dict):
            record.fields = redact(record.fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...`: what a person reads in `heroku logs`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None) or {}
        if not fields:
            return text
        head, newline, rest = text.partition("\n")  # a traceback stays below the fields
        pairs = " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
        return f"{head} {pairs}{newline}{rest}"


def _text_value(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, separators=(",", ":"))
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it per test)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(config: dict[str, Any]) -> logging.Handler:
    """One handler on the root logger, to stderr, in LOG_FORMAT, redacting unless LOG_PII.
    Replaces the handler an earlier call installed (every app factory call configures)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if config["LOG_FORMAT"] == "json" else TextFormatter())
    if not config["LOG_PII"]:
        handler.addFilter(RedactPhones())
    root.addHandler(handler)
    root.setLevel(config["LOG_LEVEL"])
    return handler


def request_id_from(header: str | None) -> str:
    if header and REQUEST_ID_PATTERN.match(header):
        return header
    return uuid.uuid4().hex


def register_request_logging(app: Flask) -> None:
    """A request id for every request (the caller's X-Request-ID, else a new one), returned in
    the response, and one log line per request when it ends."""

    @app.before_request
    def start_request() -> None:
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        request_id = g.get("request_id") or request_id_from(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        }
        if app.config["LOG_PII"] and request.query_string:
            fields["query"] = request.query_string.decode("utf-8", "replace")
        user = g.get("_login_user")  # only if this request loaded it: no extra query
        if user is not None and getattr(user, "is_authenticated", False):
            fields["user_id"] = getattr(user, "id", None)
        for name in ID_ARGS:
            if request.view_args and name in request.view_args:
                fields[name] = request.view_args[name]
        request_log.info(
            "%s %s %s", request.method, request.path, response.status_code, extra={"fields": fields}
        )
        return response


def log_job(
    *, job_id: str, func: str, queue: str, ok: bool, seconds: float, result: Any, error: str
) -> None:
    """The one line a finished job writes: its ids, outcome, time and counts."""
    fields: dict[str, Any] = {
        "job_id": job_id,
        "func": func,
        "queue": queue,
        "outcome": "finished" if ok else "failed",
        "duration_ms": round(seconds * 1000, 1),
    }
    if isinstance(result, dict):
        fields.update(job_counts(result))
    if error:
        fields["error"] = error
    job_log.log(
        logging.INFO if ok else logging.ERROR,
        "job %s %s",
        func.rsplit(".", 1)[-1],
        fields["outcome"],
        extra={"fields": fields},
    )


def job_counts(result: dict[str, Any]) -> dict[str, Any]:
    """From a job's summary, what a log line may carry: numbers, flags, ids and lists of ids
    (send ids, run ids); never free text, which may hold a number or a message body."""
    kept: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, bool | int | float) or value is None:
            kept[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, int) for v in value):
            kept[key] = list(value)[:50]
    return kept


# -- Sentry --------------------------------------------------------------------------------------

# Keys whose values are message texts or numbers wherever they appear in an event (request form
# data, local variables of a frame, extra context).
SENSITIVE_KEYS = frozenset(
    {
        "body",
        "Body",
        "text",
        "first_message",
        "second_message",
        "message_body",
        "phone",
        "phone_number",
        "to",
        "To",
        "From",
        "from",
        "from_number",
        "to_fields",
    }
)
FILTERED = "[Filtered]"


def scrub(value: Any) -> Any:
    """An event (or part of one) without message bodies and phone numbers: values under
    SENSITIVE_KEYS are replaced, and every string has its E.164-looking numbers redacted."""
    if isinstance(value, dict):
        return {
            key: FILTERED if key in SENSITIVE_KEYS and value[key] else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Sentry's last look at an event before it leaves the process."""
    event = scrub(event)
    request_data = event.get("request")
    if isinstance(request_data, dict) and request_data.get("data"):
        # A raw body (a webhook's form, a CSV) is never worth sending.
        request_data["data"] = FILTERED
    return event


def init_sentry(config: dict[str, Any]) -> bool:
    """Error reporting when SENTRY_DSN is set (Flask, RQ and logging errors); False otherwise."""
    dsn = config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=config.get("SENTRY_ENVIRONMENT") or None,
        # No user identity, request bodies (webhook forms and CSVs hold numbers and texts), frame
        # variables (claimed messages) or SQL parameters; before_send scrubs what is left.
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "stack_frame_variables": False,
            "database_query_data": False,
        },
        before_send=before_send,
        before_send_transaction=before_send,
        before_breadcrumb=lambda crumb, hint: scrub(crumb),
        traces_sample_rate=0.0,
    )
    return True
