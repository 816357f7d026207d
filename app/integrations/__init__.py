"""The only modules that talk to providers: Twilio (`twilio.py`) and Missive (`missive.py`)."""

from __future__ import annotations

from dataclasses import dataclass


class ProviderError(Exception):
    """A provider call that did not end in acceptance, described so the engine can classify it.

    `phase` says how far the request got: "not_sent" (the connection never carried it: safe to
    retry), "maybe_sent" (sent but no answer: the provider may have it), or "answered" (an HTTP
    error response, with `http_status` and the provider's own error `code`).
    """

    def __init__(
        self,
        phase: str,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.phase = phase
        self.message = message
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ProviderError({self.phase}, {self.http_status}, {self.code}, {self.message!r})"


@dataclass(frozen=True)
class ProviderMessage:
    """A message as the provider reports it."""

    sid: str
    status: str
    to: str = ""
    body: str = ""
    error_code: str | None = None
    conversation_id: str | None = None
