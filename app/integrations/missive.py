"""Missive REST API (drafts sent as SMS, posts, conversations, shared labels); its only caller."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import requests

from app.integrations import ProviderError, ProviderMessage
from app.integrations.http import make_session, retry_after_seconds, transport_error

# Missive answers 429 with Retry-After when a token goes over its limits; a call waits that long
# and tries again this many times before giving up (then the engine's own retry policy applies).
MAX_429_WAITS = 3
MAX_RETRY_AFTER = 60.0
# GET /shared_labels pages by limit (at most 200) and offset; a bound keeps a runaway list finite.
LABELS_PAGE = 200
LABELS_MAX_PAGES = 50


class MissiveClient:
    """One per process. `slot` is a context manager factory that holds one of Missive's
    5 concurrent request slots (shared by every worker through Redis), and `pace` blocks until
    the token's per-minute budget allows one more request. `max_429_waits` is how many 429s a
    call waits out before raising (a job that would rather come back later passes 0: the
    ProviderError then carries Missive's Retry-After)."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        organization_id: str = "",
        from_number: str = "",
        timeouts: tuple[float, float] = (5.0, 20.0),
        pool_size: int = 5,
        slot: Callable[[], AbstractContextManager[Any]] | None = None,
        pace: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_429_waits: int = MAX_429_WAITS,
    ) -> None:
        if not token:
            raise ValueError("MISSIVE_API_TOKEN is required for the missive transport")
        self.base_url = base_url.rstrip("/")
        self.organization_id = organization_id
        self.from_number = from_number
        self.timeouts = timeouts
        self.session = make_session(pool_size)
        self.session.headers.update(
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        )
        self.slot = slot or nullcontext
        self.pace = pace or (lambda: None)
        self.sleep = sleep
        self.max_429_waits = max_429_waits

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """One API call, waiting out 429s as Retry-After says; raises ProviderError."""
        for attempt in range(self.max_429_waits + 1):
            self.pace()
            try:
                with self.slot():
                    response = self.session.request(
                        method, self.base_url + path, json=payload, timeout=self.timeouts
                    )
            except requests.RequestException as exc:
                raise transport_error(exc) from exc
            if response.status_code == 429:
                wait = retry_after_seconds(response.headers.get("Retry-After")) or 1.0
                if wait > MAX_RETRY_AFTER or attempt >= self.max_429_waits:
                    raise ProviderError(
                        "answered", "Missive rate limit", http_status=429, retry_after=wait
                    )
                self.sleep(wait)
                continue
            if response.status_code >= 400:
                raise ProviderError(
                    "answered",
                    _error_text(response),
                    http_status=response.status_code,
                    code=str(response.status_code),
                )
            return response.json() if response.content else {}
        raise ProviderError("answered", "Missive rate limit (still 429)", http_status=429)

    def send_sms(self, to: str, body: str, *, labels: list[str] | None = None) -> ProviderMessage:
        """A draft with `send: true`: Missive sends it through its Twilio integration."""
        draft: dict[str, Any] = {
            "body": body,
            "to_fields": [{"phone_number": to}],
            "from_field": {"phone_number": self.from_number, "type": "twilio"},
            "send": True,
        }
        if self.organization_id:
            draft["organization"] = self.organization_id
        if labels and self.organization_id:
            # Missive refuses shared labels without the organization: a label is not worth
            # every text of the campaign being refused.
            draft["add_shared_labels"] = labels
        data = self._call("POST", "/drafts", {"drafts": draft})["drafts"]
        return ProviderMessage(
            sid=str(data["id"]),
            status="sent",
            to=to,
            body=body,
            conversation_id=str(data.get("conversation") or "") or None,
        )

    def conversation_messages(self, conversation_id: str) -> list[dict[str, Any]]:
        data = self._call("GET", f"/conversations/{conversation_id}/messages")
        return list(data.get("messages") or [])

    def find(self, conversation_id: str, body: str, since: datetime) -> list[ProviderMessage]:
        """Messages with exactly `body` in the conversation, delivered at or after `since`."""
        found = []
        for message in self.conversation_messages(conversation_id):
            created = message.get("delivered_at") or message.get("created_at")
            if isinstance(created, int | float) and created < since.timestamp() - 60:
                continue
            if (message.get("body") or message.get("preview") or "") == body:
                found.append(
                    ProviderMessage(
                        sid=str(message.get("id")),
                        status="sent",
                        body=body,
                        conversation_id=conversation_id,
                    )
                )
        return found

    def create_post(
        self,
        conversation_id: str,
        text: str,
        *,
        username: str = "Broadcaster",
        labels: list[str] | None = None,
        close: bool = False,
    ) -> str:
        post: dict[str, Any] = {
            "conversation": conversation_id,
            "text": text,
            "username": username,
            "notification": {"title": username, "body": text[:200]},
        }
        if labels:
            post["add_shared_labels"] = labels
        if close:
            post["close"] = True
        if self.organization_id:
            post["organization"] = self.organization_id
        return str(self._call("POST", "/posts", {"posts": post})["posts"]["id"])

    def shared_labels(self) -> list[dict[str, Any]]:
        """Every shared label of the organization, page by page (Missive returns 50 unless asked)."""
        labels: list[dict[str, Any]] = []
        for page in range(LABELS_MAX_PAGES):
            params: dict[str, Any] = {"limit": LABELS_PAGE, "offset": page * LABELS_PAGE}
            if self.organization_id:
                params["organization"] = self.organization_id
            path = f"/shared_labels?{urlencode(params)}"
            batch = list(self._call("GET", path).get("shared_labels") or [])
            labels.extend(batch)
            if len(batch) < LABELS_PAGE:
                break
        return labels

    def create_shared_label(self, name: str, parent: str | None = None) -> dict[str, Any]:
        label: dict[str, Any] = {"name": name, "organization": self.organization_id}
        if parent:
            label["parent"] = parent
        data = self._call("POST", "/shared_labels", {"shared_labels": label})
        created = data.get("shared_labels")
        return created[0] if isinstance(created, list) else created


def _error_text(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        return str(data.get("error") or data.get("message") or data)[:500]
    return str(data)[:500]
