"""A fake of Twilio's Messages API (2010-04-01) for tests and benchmarks, run by the real `twilio` client."""

from __future__ import annotations

import base64
import heapq
import itertools
import math
import random
import re
import threading
import time
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.server import FakeServer, Response, json_response, main

DEFAULT_ACCOUNT_SID = "AC" + "f4ce" * 8
DEFAULT_AUTH_TOKEN = "fake-auth-token"
API_VERSION = "2010-04-01"
TWILIO_API_URL = "https://api.twilio.com"

ERROR_MESSAGES = {
    20001: "Invalid parameter",
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}

# Status order, so a callback sent out of order never moves a stored message backwards.
_RANK = {"accepted": 0, "queued": 0, "sending": 1, "sent": 2}
_FAILED = ("failed", "undelivered")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def count_segments(body: str) -> int:
    """SMS segments as Twilio counts them: GSM-7 160/153 characters, else UCS-2 70/67 units."""
    extended = 0
    for char in body:
        if char in _GSM_EXTENDED:
            extended += 1
        elif char not in _GSM_BASIC:
            units = len(body.encode("utf-16-le")) // 2
            return 1 if units <= 70 else math.ceil(units / 67)
    units = len(body) + extended
    return 1 if units <= 160 else math.ceil(units / 153)


def twilio_error(status: int, code: int, message: str | None = None, **extra: Any) -> Response:
    payload = {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, f"Error {code}"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
        **extra,
    }
    return json_response(status, payload)


def _parse_date_filter(value: str) -> date | datetime:
    """`YYYY-MM-DD` (a day) or an ISO-8601 datetime (twilio-python sends `YYYY-MM-DDTHH:MM:SSZ`)."""
    value = value.strip()
    if len(value) == 10:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date_matches(sent: datetime, operator: str, bound: date | datetime) -> bool:
    left: date | datetime = sent
    if not isinstance(bound, datetime):
        left = sent.date()
    if operator == ">":
        return left >= bound  # Twilio's `DateSent>` means "on or after"
    if operator == "<":
        return left <= bound
    return left == bound


class RedirectingHttpClient(TwilioHttpClient):
    """The twilio client's own HTTP client, sending what it addresses to api.twilio.com (including
    the next-page URLs it builds from `next_page_uri`) to the fake instead."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):  # type: ignore[override]
        if url.startswith(TWILIO_API_URL):
            url = self.base_url + url[len(TWILIO_API_URL) :]
        return super().request(method, url, *args, **kwargs)


def twilio_client(
    url: str,
    account_sid: str = DEFAULT_ACCOUNT_SID,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    timeout: float = 10.0,
) -> Client:
    """A real `twilio.rest.Client` talking to the fake at `url` (in-thread or another process)."""
    return Client(account_sid, auth_token, http_client=RedirectingHttpClient(url, timeout=timeout))


class FakeTwilio(FakeServer):
    """Twilio's Messages API: create, fetch, list (filters and paging), signed status callbacks.

    Every option is also a key of `POST /_fake/config`. Injected failures (`rate_*`) apply to
    message creation; `read_rate_500` fails fetches and lists.
    """

    kind = "twilio"

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        latency_ms: float = 0,
        latency_jitter_ms: float = 0,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_timeout: float = 0.0,
        timeout_seconds: float = 30.0,
        timeout_accepts: float = 0.5,
        error_numbers: dict[str, int] | None = None,
        status_callbacks: bool = False,
        callback_delay_ms: float = 50,
        callback_final_status: str = "delivered",
        callback_final_by_number: dict[str, tuple[str, int | None]] | None = None,
        callback_duplicate_rate: float = 0.0,
        callback_shuffle: bool = False,
        callback_timeout_seconds: float = 5.0,
        read_rate_500: float = 0.0,
        read_max_rps: float = 0.0,
        max_mps: float = 0.0,
        max_mps_burst_seconds: float = 0.1,
        seed: int | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.latency_ms = latency_ms
        self.latency_jitter_ms = latency_jitter_ms
        self.rate_429 = rate_429
        self.rate_500 = rate_500
        self.rate_timeout = rate_timeout
        self.timeout_seconds = timeout_seconds
        self.timeout_accepts = timeout_accepts
        self.error_numbers = self._coerce_option("error_numbers", error_numbers)
        self.status_callbacks = status_callbacks
        self.callback_delay_ms = callback_delay_ms
        self.callback_final_status = callback_final_status
        self.callback_final_by_number = self._coerce_option(
            "callback_final_by_number", callback_final_by_number
        )
        self.callback_duplicate_rate = callback_duplicate_rate
        self.callback_shuffle = callback_shuffle
        self.callback_timeout_seconds = callback_timeout_seconds
        self.read_rate_500 = read_rate_500
        # Twilio limits API reads per account: beyond `read_max_rps` (a tenth of a second of
        # burst, at least one) a fetch or list page is answered 429 with Retry-After.
        self.read_max_rps = read_max_rps
        self._read_bucket = (0.0, 0.0)
        self.max_mps = max_mps
        self.max_mps_burst_seconds = max_mps_burst_seconds
        self._bucket = (0.0, 0.0)  # (tokens, monotonic time); refilled on the first send
        self.seed = seed
        self._rng = random.Random(seed)
        self._callbacks = _CallbackDispatcher(self)
        self._date_cache: tuple[int, str] = (0, "")
        super().__init__(host, port)
        self._options_changed()

    def client(self, timeout: float = 10.0) -> Client:
        """A real twilio client for this fake, with its credentials."""
        return twilio_client(self.url, self.account_sid, self.auth_token, timeout)

    # -- options --------------------------------------------------------------------------------
    def _coerce_option(self, name: str, value: Any) -> Any:
        if name == "error_numbers":
            return {str(number): int(code) for number, code in (value or {}).items()}
        if name == "callback_final_by_number":
            result = {}
            for number, outcome in (value or {}).items():
                if isinstance(outcome, str):
                    outcome = (outcome, None)
                status, code = outcome
                result[str(number)] = (str(status), int(code) if code is not None else None)
            return result
        return value

    def configure(self, **options: Any) -> None:
        super().configure(**options)
        with self._lock:
            if "seed" in options:
                self._rng = random.Random(self.seed)
            if "max_mps" in options:
                self._bucket = (0.0, 0.0)
            if "read_max_rps" in options:
                self._read_bucket = (0.0, 0.0)

    def _options_changed(self) -> None:
        credentials = f"{self.account_sid}:{self.auth_token}".encode()
        self._expected_auth = "Basic " + base64.b64encode(credentials).decode()
        self._account_path = f"/{API_VERSION}/Accounts/{self.account_sid}"
        self._messages_path = f"{self._account_path}/Messages.json"
        self._message_prefix = f"{self._account_path}/Messages/"
        self._validator = RequestValidator(self.auth_token)

    # -- records and stats ----------------------------------------------------------------------
    def _reset_counters(self) -> None:
        super()._reset_counters()
        self._records: list[dict[str, Any]] = []
        self._by_sid: dict[str, dict[str, Any]] = {}
        self._by_to: dict[str, list[dict[str, Any]]] = {}
        self._pairs: set[tuple[str, str]] = set()
        self._callback_urls: set[str] = set()
        self._seq = 0
        self._read_429_left = 0
        self._backdated = False
        self.reads_rate_limited = 0
        self.fetches: dict[str, int] = {}  # GET of one message, by SID
        self.list_queries: list[str] = []  # GET of the list, each page's query string
        self.accepted = 0
        self.duplicates = 0
        self.duplicates_by_callback = 0
        self.timeouts = 0
        self.over_max_mps = 0
        self.errors_by_code: dict[str, int] = {}
        self.callbacks_sent = 0
        self.callback_errors = 0
        self.callback_responses_by_status: dict[str, int] = {}

    def answer_reads_with_429(self, count: int) -> None:
        """The next `count` fetches and lists answer 429 (Retry-After: 0), as Twilio does to a
        burst of reads; `reads_rate_limited` counts them."""
        with self._lock:
            self._read_429_left = count

    def app_settings(self, **extra: Any) -> dict[str, Any]:
        """The app's settings for sending through the twilio transport to this fake (from our
        usual test number), with `extra` on top."""
        return {
            "TRANSPORT": "twilio",
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_FROM_NUMBER": "+13135559999",
            "TWILIO_API_BASE_URL": self.url,
            **extra,
        }

    def add_message(
        self,
        to: str,
        body: str,
        status: str = "sent",
        error_code: int | None = None,
        *,
        from_: str | None = None,
        created_at: datetime | None = None,
    ) -> str:
        """Record a message as if it had been sent earlier, with `status`, from `from_` (as
        Missive's Twilio integration sends) and created at `created_at`; returns its SID. The
        list stays newest first by date whatever order messages are added in."""
        record = self._accept({"To": to, "Body": body, "From": from_ or ""})
        if created_at is not None:
            with self._lock:
                record["date_created"] = created_at.astimezone(UTC)
                record["date_created_rfc2822"] = format_datetime(
                    created_at.astimezone(UTC).replace(microsecond=0)
                )
                self._backdated = True
        self.set_status(record["sid"], status, error_code)
        return record["sid"]

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Move a held message on (a carrier's late answer) without sending a callback."""
        with self._lock:
            record = self._by_sid[sid]
            record["status"] = status
            record["error_code"] = error_code
            record["date_updated_rfc2822"] = self._rfc2822(datetime.now(UTC))

    def reset(self) -> None:
        self._callbacks.clear()
        super().reset()

    def control_actions(self) -> dict[str, Any]:
        return {"add_messages": self._add_messages}

    def control_views(self) -> dict[str, Any]:
        return {"statuses": self.statuses}

    def _add_messages(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`POST /_fake/add_messages {"messages": [{to, body, status, error_code}]}` (a fake in
        another process): `add_message` for each; returns their SIDs in order."""
        return {
            "sids": [
                self.add_message(m["to"], m["body"], m.get("status", "sent"), m.get("error_code"))
                for m in payload["messages"]
            ]
        }

    def statuses(self) -> dict[str, str]:
        """{SID: status} of every message (`GET /_fake/statuses`)."""
        with self._lock:
            return {record["sid"]: record["status"] for record in self._records}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.base_stats(),
                "accepted": self.accepted,
                "fetches": sum(self.fetches.values()),
                "reads_rate_limited": self.reads_rate_limited,
                "list_pages": len(self.list_queries),
                "duplicates": self.duplicates,
                "duplicates_by_callback": self.duplicates_by_callback,
                "timeouts": self.timeouts,
                "over_max_mps": self.over_max_mps,
                "errors_by_code": dict(self.errors_by_code),
                "callbacks_sent": self.callbacks_sent,
                "callbacks_pending": self._callbacks.pending(),
                "callback_errors": self.callback_errors,
                "callback_responses_by_status": dict(self.callback_responses_by_status),
            }

    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: sid, to, from, body, status, status_callback,
        messaging_service_sid, num_segments, error_code, date_created (aware UTC datetime) and
        date_created_rfc2822."""
        with self._lock:
            return [dict(record) for record in self._records]

    def message(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._by_sid.get(sid)
            return dict(record) if record else None

    # -- HTTP -----------------------------------------------------------------------------------
    def handle(self, request) -> Response | None:
        auth = request.headers.get("Authorization")
        if auth != self._expected_auth and not self._auth_matches(auth):
            return twilio_error(401, 20003, detail="Your AccountSid or AuthToken was incorrect.")
        if self.latency_ms or self.latency_jitter_ms:
            self._sleep_latency()
        path = request.path_only
        method = request.command
        if path == self._messages_path:
            if method == "POST":
                return self._create(request.body)
            if method == "GET":
                with self._lock:
                    self.list_queries.append(request.query)
                return self._read_failure() or self._list(request.query)
        elif method == "GET" and path.startswith(self._message_prefix) and path.endswith(".json"):
            sid = path[len(self._message_prefix) : -5]
            with self._lock:
                self.fetches[sid] = self.fetches.get(sid, 0) + 1
            return self._read_failure() or self._fetch(sid)
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def _auth_matches(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except ValueError:
            return False
        return decoded == f"{self.account_sid}:{self.auth_token}"

    def _sleep_latency(self) -> None:
        delay = self.latency_ms
        if self.latency_jitter_ms:
            with self._lock:
                delay += self._rng.uniform(0, self.latency_jitter_ms)
        if delay > 0:
            time.sleep(delay / 1000)

    def _read_over_limit(self) -> bool:
        now = time.monotonic()
        capacity = max(1.0, self.read_max_rps * 0.1)
        with self._lock:
            tokens, last = self._read_bucket
            tokens = (
                capacity
                if last == 0.0
                else min(capacity, tokens + (now - last) * self.read_max_rps)
            )
            over = tokens < 1.0
            if over:
                self.reads_rate_limited += 1
            else:
                tokens -= 1.0
            self._read_bucket = (tokens, now)
        return over

    def _read_failure(self) -> Response | None:
        if self.read_max_rps and self._read_over_limit():
            response = twilio_error(429, 20429)
            response.headers = {**(response.headers or {}), "Retry-After": "1"}
            return response
        if self._read_429_left:
            with self._lock:
                burst = self._read_429_left > 0
                if burst:
                    self._read_429_left -= 1
                    self.reads_rate_limited += 1
            if burst:
                response = twilio_error(429, 20429)
                response.headers = {**(response.headers or {}), "Retry-After": "0"}
                return response
        if self.read_rate_500:
            with self._lock:
                failed = self._rng.random() < self.read_rate_500
            if failed:
                return twilio_error(500, 20500)
        return None

    def _count_error(self, code: int) -> None:
        with self._lock:
            self.errors_by_code[str(code)] = self.errors_by_code.get(str(code), 0) + 1

    def _create(self, body: bytes) -> Response | None:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        hang = False
        if self.rate_429 or self.rate_500 or self.rate_timeout:
            with self._lock:
                draw = self._rng.random()
            if draw < self.rate_429:
                self._count_error(20429)
                return twilio_error(429, 20429)
            draw -= self.rate_429
            if draw < self.rate_500:
                self._count_error(20500)
                return twilio_error(500, 20500)
            hang = draw - self.rate_500 < self.rate_timeout

        error = self._validate(form)
        if error is not None:
            self._count_error(error[0])
            return twilio_error(400, *error)

        if self.max_mps and not self._take_tokens(count_segments(form.get("Body", ""))):
            self._count_error(20429)
            return twilio_error(429, 20429)

        if hang:
            with self._lock:
                self.timeouts += 1
                accept = self._rng.random() < self.timeout_accepts
            if accept:
                self._accept(form)
            # Hold the answer past the client's read timeout; stop() releases it.
            self.stopping.wait(self.timeout_seconds)
            return None

        record = self._accept(form)
        return json_response(201, self._resource(record))

    def _take_tokens(self, segments: int) -> bool:
        """A token bucket of `max_mps` segments a second holding `max_mps_burst_seconds` of them
        (at least one): a send is let through while any credit is left, and may leave a debt."""
        now = time.monotonic()
        capacity = max(1.0, self.max_mps * self.max_mps_burst_seconds)
        with self._lock:
            tokens, last = self._bucket
            tokens = (
                capacity if last == 0.0 else min(capacity, tokens + (now - last) * self.max_mps)
            )
            allowed = tokens >= 1.0
            if allowed:
                tokens -= segments
            else:
                self.over_max_mps += 1
            self._bucket = (tokens, now)
        return allowed

    def _validate(self, form: dict[str, str]) -> tuple[int, str] | None:
        to = form.get("To", "").strip()
        if not to:
            return 21604, ERROR_MESSAGES[21604]
        if not form.get("From", "").strip() and not form.get("MessagingServiceSid", "").strip():
            return 21603, ERROR_MESSAGES[21603]
        body = form.get("Body", "")
        if not body.strip() and not form.get("MediaUrl"):
            return 21602, ERROR_MESSAGES[21602]
        if len(body) > 1600:
            return 21617, ERROR_MESSAGES[21617]
        if not _E164.match(to):
            return 21211, f"The 'To' number {to} is not a valid phone number."
        code = self.error_numbers.get(to)
        if code is not None:
            return code, ERROR_MESSAGES.get(code, f"Error {code}")
        return None

    def _rfc2822(self, moment: datetime) -> str:
        second = int(moment.timestamp())
        cached_second, text = self._date_cache
        if cached_second != second:
            text = format_datetime(moment.replace(microsecond=0))
            self._date_cache = (second, text)
        return text

    def _accept(self, form: dict[str, str]) -> dict[str, Any]:
        now = datetime.now(UTC)
        rfc = self._rfc2822(now)
        to = form["To"].strip()
        body = form.get("Body", "")
        service = form.get("MessagingServiceSid") or None
        callback = form.get("StatusCallback") or None
        record = {
            "sid": "",
            "account_sid": self.account_sid,
            "to": to,
            "from": form.get("From") or None,
            "body": body,
            "status": "accepted" if service else "queued",
            "status_callback": callback,
            "messaging_service_sid": service,
            "num_segments": count_segments(body),
            "error_code": None,
            "date_created": now,
            "date_created_rfc2822": rfc,
            "date_updated_rfc2822": rfc,
            "seq": 0,
        }
        pair = (to, body)
        with self._lock:
            self._seq += 1
            record["seq"] = self._seq
            record["sid"] = sid = f"SM{self._rng.getrandbits(128):032x}"
            self._records.append(record)
            self._by_sid[sid] = record
            self._by_to.setdefault(to, []).append(record)
            self.accepted += 1
            if pair in self._pairs:
                self.duplicates += 1
            else:
                self._pairs.add(pair)
            if callback is not None:
                if callback in self._callback_urls:
                    self.duplicates_by_callback += 1
                else:
                    self._callback_urls.add(callback)
        if callback is not None and self.status_callbacks:
            self._schedule_callbacks(record)
        return record

    def _resource(self, record: dict[str, Any]) -> dict[str, Any]:
        sid = record["sid"]
        base = f"{self._message_prefix}{sid}"
        code = record["error_code"]
        return {
            "account_sid": record["account_sid"],
            "api_version": API_VERSION,
            "body": record["body"],
            "date_created": record["date_created_rfc2822"],
            "date_sent": record["date_created_rfc2822"],
            "date_updated": record["date_updated_rfc2822"],
            "direction": "outbound-api",
            "error_code": code,
            "error_message": ERROR_MESSAGES.get(code) if code else None,
            "from": record["from"],
            "messaging_service_sid": record["messaging_service_sid"],
            "num_media": "0",
            "num_segments": str(record["num_segments"]),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": record["status"],
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": record["to"],
            "uri": f"{base}.json",
        }

    def _fetch(self, sid: str) -> Response:
        with self._lock:
            record = self._by_sid.get(sid)
            resource = self._resource(record) if record else None
        if resource is None:
            return twilio_error(
                404, 20404, f"The requested resource {self._message_prefix}{sid}.json was not found"
            )
        return json_response(200, resource)

    def _list(self, query: str) -> Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        filters = {
            key: params[key]
            for key in ("To", "From", "DateSent", "DateSent<", "DateSent>")
            if params.get(key)
        }
        try:
            page_size = int(params.get("PageSize") or 50)
            page = int(params.get("Page") or 0)
            if not 1 <= page_size <= 1000 or page < 0:
                raise ValueError
            dates = [
                (key[8:], _parse_date_filter(filters[key]))
                for key in filters
                if key[:8] == "DateSent"
            ]
        except ValueError:
            return twilio_error(400, 20001, "Invalid PageSize, Page or DateSent value")

        token = params.get("PageToken", "")
        with self._lock:
            pool = self._by_to.get(filters["To"], []) if "To" in filters else self._records
            pool = pool[:]
            anchor = self._by_sid.get(token[2:]) if token[:2] in ("PA", "PB") else None
            if self._backdated:  # Twilio lists by date sent, newest first
                pool.sort(key=lambda r: (r["date_created"].replace(microsecond=0), r["seq"]))
        sender = filters.get("From")
        matching = []  # newest first
        for record in reversed(pool):
            if sender is not None and record["from"] != sender:
                continue
            if dates:
                sent = record["date_created"].replace(microsecond=0)
                if not all(_date_matches(sent, op, bound) for op, bound in dates):
                    continue
            matching.append(record)

        position = next((i for i, r in enumerate(matching) if r is anchor), None)
        if anchor is not None and position is None:
            return twilio_error(400, 20001, "Invalid PageToken")
        if position is not None and token.startswith("PA"):  # the page after the anchor
            rows = matching[position + 1 : position + 1 + page_size]
        elif position is not None:  # "PB": the page before the anchor
            rows = matching[max(0, position - page_size) : position]
        else:
            rows = matching[page * page_size : (page + 1) * page_size]
        has_next = bool(rows) and matching[-1] is not rows[-1]

        def uri(page_number: int, page_token: str | None = None) -> str:
            query_params = {**filters, "PageSize": page_size, "Page": page_number}
            if page_token:
                query_params["PageToken"] = page_token
            return f"{self._messages_path}?{urlencode(query_params)}"

        with self._lock:
            messages = [self._resource(record) for record in rows]
        start = page * page_size
        payload = {
            "messages": messages,
            "page": page,
            "page_size": page_size,
            "start": start,
            "end": start + len(rows) - 1 if rows else start,
            "uri": uri(page, token or None),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1, "PA" + rows[-1]["sid"]) if has_next else None,
            "previous_page_uri": uri(page - 1, "PB" + rows[0]["sid"]) if page and rows else None,
        }
        return json_response(200, payload)

    # -- status callbacks -----------------------------------------------------------------------
    def _schedule_callbacks(self, record: dict[str, Any]) -> None:
        """sending, sent, then the final status, `callback_delay_ms` apart. In order, each one is
        posted only after the previous one was answered (several workers could otherwise
        overtake each other); with `callback_shuffle` they go out independently, in any order."""
        final, code = self.callback_final_by_number.get(
            record["to"], (self.callback_final_status, None)
        )
        if code is None and final in _FAILED:
            code = 30008
        stages = [("sending", None), ("sent", None), (final, code)]
        delay = self.callback_delay_ms / 1000
        now = time.monotonic()
        due_times = [now + delay * (index + 1) for index in range(len(stages))]
        jobs: list[tuple[float, tuple]] = []
        with self._lock:
            shuffle = self.callback_shuffle
            if shuffle:
                self._rng.shuffle(due_times)
            for due, (status, error_code) in zip(due_times, stages, strict=True):
                jobs.append((due, (record, status, error_code)))
                if (
                    self.callback_duplicate_rate
                    and self._rng.random() < self.callback_duplicate_rate
                ):
                    jobs.append((due + delay / 2, (record, status, error_code)))
        if shuffle:
            self._callbacks.schedule([(due, (*job, [])) for due, job in jobs])
        else:
            due, job = jobs[0]
            self._callbacks.schedule([(due, (*job, jobs[1:]))])

    def _deliver_callback(self, session: requests.Session, job: tuple) -> None:
        record, status, error_code, following = job
        if self._by_sid.get(record["sid"]) is not record:
            return  # reset() since it was scheduled
        try:
            self._post_callback(session, record, status, error_code)
        finally:
            if following:
                (due, next_job), rest = following[0], following[1:]
                self._callbacks.schedule([(max(due, time.monotonic()), (*next_job, rest))])

    def _post_callback(
        self, session: requests.Session, record: dict, status: str, error_code: int | None
    ) -> None:
        rank = _RANK.get(status, 3)
        with self._lock:
            if rank > _RANK.get(record["status"], 3):
                record["status"] = status
                record["error_code"] = error_code
                record["date_updated_rfc2822"] = self._rfc2822(datetime.now(UTC))
        params = {
            "MessageSid": record["sid"],
            "SmsSid": record["sid"],
            "AccountSid": record["account_sid"],
            "To": record["to"],
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": API_VERSION,
        }
        if record["from"]:
            params["From"] = record["from"]
        if record["messaging_service_sid"]:
            params["MessagingServiceSid"] = record["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        url = record["status_callback"]
        signature = self._validator.compute_signature(url, params)
        try:
            response = session.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
                timeout=self.callback_timeout_seconds,
            )
            key = str(response.status_code)
            failed = response.status_code >= 300
        except requests.RequestException:
            key, failed = "error", True
        with self._lock:
            self.callbacks_sent += 1
            self.callback_errors += failed
            self.callback_responses_by_status[key] = (
                self.callback_responses_by_status.get(key, 0) + 1
            )

    def _stopped(self) -> None:
        self._callbacks.stop()


class _CallbackDispatcher:
    """A few worker threads posting due callbacks from one time-ordered heap."""

    def __init__(self, fake: FakeTwilio, workers: int = 4) -> None:
        self.fake = fake
        self.workers = workers
        self._heap: list[tuple[float, int, tuple]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._busy = 0

    def schedule(self, jobs: list[tuple[float, tuple]]) -> None:
        with self._cond:
            if not self._threads:
                self._start()
            for due, job in jobs:
                heapq.heappush(self._heap, (due, next(self._order), job))
            self._cond.notify(len(jobs))

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._busy

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def _start(self) -> None:
        self._stopping = False
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._run, name=f"fake-twilio-callbacks-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(self.fake.callback_timeout_seconds + 1)

    def _run(self) -> None:
        session = requests.Session()
        try:
            while True:
                with self._cond:
                    while True:
                        if self._stopping:
                            return
                        if self._heap:
                            wait = self._heap[0][0] - time.monotonic()
                            if wait <= 0:
                                job = heapq.heappop(self._heap)[2]
                                self._busy += 1
                                break
                            self._cond.wait(wait)
                        else:
                            self._cond.wait()
                try:
                    self.fake._deliver_callback(session, job)
                finally:
                    with self._cond:
                        self._busy -= 1
        finally:
            session.close()


if __name__ == "__main__":
    main(FakeTwilio)
