"""Twilio Messages API: send, fetch, find; the only module that imports `twilio`."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from app.integrations import ProviderError, ProviderMessage
from app.integrations.http import make_session, retry_after_seconds, transport_error

TWILIO_API_ORIGIN = "https://api.twilio.com"


class _SessionHttpClient(HttpClient):
    """The twilio client's HTTP hook: our session, our timeouts, and an optional other base URL.

    The base URL lets tests and benchmarks point the real client at a fake server; timeouts are
    (connect, read) so a slow connect and a lost answer can be told apart.
    """

    def __init__(self, session: requests.Session, base_url: str, timeouts: tuple[float, float]):
        super().__init__(logger=None, is_async=False, timeout=None)  # type: ignore[arg-type]
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self._local = threading.local()  # shared by a batch's threads: each sees its own answer

    @property
    def last_response(self) -> requests.Response | None:
        return getattr(self._local, "response", None)

    def request(  # noqa: PLR0913 (the twilio hook's signature)
        self,
        method: str,
        uri: str,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects: bool = False,
    ) -> Response:
        if self.base_url and uri.startswith(TWILIO_API_ORIGIN):
            uri = self.base_url + uri[len(TWILIO_API_ORIGIN) :]
        try:
            response = self.session.request(
                method.upper(),
                uri,
                params=params,
                data=data,
                headers=headers,
                auth=auth,
                timeout=self.timeouts,
                allow_redirects=allow_redirects,
            )
        except requests.RequestException as exc:
            raise transport_error(exc) from exc
        self._local.response = response
        return Response(int(response.status_code), response.text, response.headers)


class TwilioGateway:
    """One per process: a twilio `Client` on one keep-alive session, safe to share by threads."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str = "",
        messaging_service_sid: str = "",
        base_url: str = "",
        timeouts: tuple[float, float] = (5.0, 20.0),
        pool_size: int = 8,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required")
        if not from_number and not messaging_service_sid:
            raise ValueError("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID is required")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.http = _SessionHttpClient(make_session(pool_size), base_url, timeouts)
        self.client = Client(account_sid, auth_token, http_client=self.http)

    @property
    def sender(self) -> str:
        return self.messaging_service_sid or self.from_number

    def send(self, to: str, body: str, status_callback: str | None = None) -> ProviderMessage:
        """Create one message; raises ProviderError when Twilio does not accept it."""
        kwargs: dict[str, str] = {"to": to, "body": body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise self._answered_error(exc) from exc
        return ProviderMessage(sid=message.sid, status=message.status or "queued", to=to, body=body)

    def fetch(self, sid: str) -> ProviderMessage | None:
        """The message by SID, or None when Twilio says it does not exist."""
        try:
            message = self.client.messages(sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise self._answered_error(exc) from exc
        return _provider_message(message)

    def find(self, to: str, body: str, since: datetime) -> list[ProviderMessage]:
        """Messages to `to` with exactly `body` created at or after `since` (newest first).

        Pages newest-first through the number's messages and stops at the first one older than
        `since` (less a minute of clock skew). No DateSent filter: a message Twilio still holds
        in its queue has no date_sent yet, and must be found all the same.
        """
        horizon = since - timedelta(minutes=1)
        found = []
        try:
            for message in self.client.messages.stream(to=to, page_size=50):
                if message.date_created and message.date_created < horizon:
                    break
                if (message.body or "") == body:
                    found.append(_provider_message(message))
        except TwilioRestException as exc:
            raise self._answered_error(exc) from exc
        return found

    def list_page(
        self, *, from_: str, sent_after: datetime, page_size: int = 1000, page_url: str = ""
    ) -> tuple[list[ListedMessage], str | None]:
        """One page of Twilio's Messages list (newest first) from `from_` sent on or after
        `sent_after` (`DateSent>=`), or the page at `page_url` (a `next_page_uri` Twilio gave
        before); returns its messages and the next page's URL (None on the last page)."""
        try:
            if page_url:
                page = self.client.messages.get_page(page_url)
            else:
                page = self.client.messages.page(
                    from_=from_, date_sent_after=sent_after, page_size=page_size
                )
            records = [_listed_message(message) for message in page]
        except TwilioException as exc:
            raise self._page_error(exc) from exc
        return records, page.next_page_url

    def _page_error(self, exc: TwilioException) -> ProviderError:
        if isinstance(exc, TwilioRestException):
            return self._answered_error(exc)
        # A list page that is not a 200 raises a bare TwilioException ("Unable to fetch page").
        response = self.http.last_response
        status = response.status_code if response is not None else None
        retry_after = None
        message = str(exc)
        if response is not None:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            try:
                message = str(response.json().get("message") or message)
            except ValueError:
                pass
        return ProviderError("answered", message[:500], http_status=status, retry_after=retry_after)

    def _answered_error(self, exc: TwilioRestException) -> ProviderError:
        response = self.http.last_response
        retry_after = None
        if response is not None and exc.status == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return ProviderError(
            "answered",
            str(exc.msg or exc)[:500],
            http_status=exc.status,
            code=str(exc.code) if exc.code else None,
            retry_after=retry_after,
        )


@dataclass(frozen=True)
class ListedMessage:
    """A message of Twilio's Messages list, with what matching a row needs."""

    sid: str
    to: str
    from_: str
    body: str
    status: str
    direction: str
    date_created: datetime | None
    date_sent: datetime | None
    error_code: str | None = None


def _listed_message(message) -> ListedMessage:
    return ListedMessage(
        sid=message.sid,
        to=message.to or "",
        from_=getattr(message, "from_", None) or "",
        body=message.body or "",
        status=message.status or "",
        direction=message.direction or "",
        date_created=message.date_created,
        date_sent=message.date_sent,
        error_code=str(message.error_code) if message.error_code else None,
    )


def _provider_message(message) -> ProviderMessage:
    return ProviderMessage(
        sid=message.sid,
        status=message.status or "",
        to=message.to or "",
        body=message.body or "",
        error_code=str(message.error_code) if message.error_code else None,
    )


def valid_signature(auth_token: str, url: str, params: dict[str, str], signature: str) -> bool:
    """Whether `X-Twilio-Signature` matches the request Twilio made to `url` with `params`."""
    return RequestValidator(auth_token).validate(url, params, signature)
