"""What happens after a provider call (SPEC 6.3): accept, retry with backoff, unknown, or fail."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.integrations import ProviderError


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"  # not processed by the provider: safe to send again later
    UNKNOWN = "unknown"  # the provider may have it: only recovery (SPEC 6.4) may decide
    FAILED = "failed"  # final, no retry
    UNSENT = "unsent"  # never handed to the provider (the worker is stopping): queued again
    REPLIED = "replied"  # a follow-up whose contact replied while it waited: cancelled, unsent


class ContactEffect(enum.StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    EXCLUDE = "exclude"


# Twilio's own codes that say something about the recipient rather than about this message.
OPTED_OUT_CODES = frozenset({"21610"})
INVALID_NUMBER_CODES = frozenset({"21211", "21614"})
RATE_LIMIT_CODES = frozenset({"20429"})
RETRY_LIMIT_REASON = "retry limit"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_sid: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    conversation_id: str | None = None
    contact_effect: ContactEffect | None = None


def classify_error(error: ProviderError) -> SendResult:
    """Map a failed provider call to the outcome of SPEC 6.3."""
    code = error.code
    message = error.message
    if error.phase == "not_sent":
        return SendResult(Outcome.RETRY, error_message=message)
    if error.phase == "maybe_sent":
        return SendResult(Outcome.UNKNOWN, error_message=message)
    status = error.http_status or 0
    if status == 429 or code in RATE_LIMIT_CODES:
        return SendResult(
            Outcome.RETRY,
            error_code=code or "429",
            error_message=message,
            retry_after=error.retry_after,
        )
    if status >= 500:
        return SendResult(Outcome.RETRY, error_code=code or str(status), error_message=message)
    effect = None
    if code in OPTED_OUT_CODES:
        effect = ContactEffect.UNSUBSCRIBE
    elif code in INVALID_NUMBER_CODES:
        effect = ContactEffect.EXCLUDE
    return SendResult(
        Outcome.FAILED,
        error_code=code or str(status or ""),
        error_message=message,
        contact_effect=effect,
    )


def next_attempt_time(
    attempts: int, now: datetime, backoff: tuple[int, ...], retry_after: float | None = None
) -> datetime | None:
    """When attempt number `attempts + 1` may go, or None when the retries are used up.

    `attempts` counts calls already made; `backoff` has one wait per allowed retry, so
    (60, 300, 900) allows three retries after the first attempt.
    """
    if attempts > len(backoff):
        return None
    wait = backoff[attempts - 1] if attempts >= 1 else backoff[0]
    if retry_after:
        wait = max(wait, retry_after)
    return now + timedelta(seconds=wait)
