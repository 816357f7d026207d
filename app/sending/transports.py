"""The transports behind one small interface: send one message, look one up (SPEC 6)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import Flask

from app.extensions import get_redis
from app.integrations import ProviderError, ProviderMessage
from app.integrations.missive import MissiveClient
from app.integrations.twilio import TwilioGateway
from app.sending.pacing import RedisSemaphore, TokenBucket
from app.sending.policy import Outcome, SendResult, classify_error

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
SIMULATOR_FAILING_SUFFIX = "0000"
SIMULATOR_FAILURE_CODE = "30006"
# Missive: 300 requests a minute and 900 per 15 minutes per token, 5 at once (SPEC 10).
MISSIVE_REQUESTS_PER_SECOND = 0.9
MISSIVE_BURST = 60
MISSIVE_CONCURRENCY = 5


@dataclass(frozen=True)
class OutboundItem:
    """What a transport needs to know about one claimed message."""

    id: int
    to: str
    body: str
    sms_segments: int = 1
    claimed_at: datetime | None = None
    conversation_id: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class LookupResult:
    """`found` True (with the provider's id), False (provably absent), None (cannot tell)."""

    found: bool | None
    provider_sid: str | None = None
    provider_status: str | None = None
    reason: str = ""


def lookup_result(found: list[ProviderMessage], *, absent: str, where: str) -> LookupResult:
    """One match is ours; none proves absence; several (the same text sent to the same number
    again since the claim, by another send) cannot be told apart by content."""
    if len(found) == 1:
        return LookupResult(True, found[0].sid, found[0].status)
    if not found:
        return LookupResult(False, reason=absent)
    return LookupResult(None, reason=f"{len(found)} identical messages {where}")


class Transport(Protocol):
    name: str
    sender: str
    concurrency: int

    def send(self, item: OutboundItem) -> SendResult: ...

    def lookup(self, item: OutboundItem) -> LookupResult: ...


class SimulatorTransport:
    """No network. Accepts everything; delivery statuses follow a few seconds later through the
    same status-update path real callbacks use (numbers ending in 0000 fail with 30006)."""

    name = "simulator"
    sender = "simulator"

    def __init__(self, concurrency: int = 8) -> None:
        self.concurrency = concurrency

    def send(self, item: OutboundItem) -> SendResult:
        return SendResult(
            Outcome.ACCEPTED, provider_sid="SIM" + uuid.uuid4().hex, provider_status="queued"
        )

    def lookup(self, item: OutboundItem) -> LookupResult:
        # The simulator keeps nothing: what it did not record as accepted, it never sent.
        return LookupResult(False, reason="the simulator keeps no record of unrecorded sends")

    @staticmethod
    def final_status(to: str) -> tuple[str, str | None]:
        if to.endswith(SIMULATOR_FAILING_SUFFIX):
            return "undelivered", SIMULATOR_FAILURE_CODE
        return "delivered", None


class TwilioTransport:
    name = "twilio"

    def __init__(self, gateway: TwilioGateway, public_base_url: str, concurrency: int) -> None:
        self.gateway = gateway
        self.public_base_url = public_base_url.rstrip("/")
        self.concurrency = concurrency

    @property
    def sender(self) -> str:
        return self.gateway.sender

    def status_callback_url(self, message_id: int) -> str:
        return f"{self.public_base_url}{STATUS_CALLBACK_PATH}?m={message_id}"

    def send(self, item: OutboundItem) -> SendResult:
        try:
            message = self.gateway.send(item.to, item.body, self.status_callback_url(item.id))
        except ProviderError as exc:
            return classify_error(exc)
        return SendResult(
            Outcome.ACCEPTED, provider_sid=message.sid, provider_status=message.status
        )

    def lookup(self, item: OutboundItem) -> LookupResult:
        if item.claimed_at is None:
            return LookupResult(None, reason="no claim time to search from")
        try:
            found = self.gateway.find(item.to, item.body, item.claimed_at)
        except ProviderError as exc:
            return LookupResult(None, reason=f"Twilio lookup failed: {exc.message}")
        return lookup_result(found, absent="not found at Twilio", where="found at Twilio")


class MissiveTransport:
    name = "missive"

    def __init__(self, client: MissiveClient, concurrency: int) -> None:
        self.client = client
        self.concurrency = min(concurrency, MISSIVE_CONCURRENCY)

    @property
    def sender(self) -> str:
        return self.client.from_number

    def send(self, item: OutboundItem) -> SendResult:
        try:
            message = self.client.send_sms(item.to, item.body, labels=list(item.labels))
        except ProviderError as exc:
            return classify_error(exc)
        return SendResult(
            Outcome.ACCEPTED,
            provider_sid=message.sid,
            provider_status="sent",
            conversation_id=message.conversation_id,
        )

    def lookup(self, item: OutboundItem) -> LookupResult:
        if not item.conversation_id or item.claimed_at is None:
            return LookupResult(None, reason="no Missive conversation known for this number")
        try:
            found = self.client.find(item.conversation_id, item.body, item.claimed_at)
        except ProviderError as exc:
            return LookupResult(None, reason=f"Missive lookup failed: {exc.message}")
        return lookup_result(
            found, absent="not in the Missive conversation", where="in the conversation"
        )


def build_transport(app: Flask) -> Transport:
    """The configured transport (one per process; clients keep their connections)."""
    config = app.config
    concurrency = config["SEND_CONCURRENCY"]
    timeouts = (config["PROVIDER_CONNECT_TIMEOUT"], config["PROVIDER_READ_TIMEOUT"])
    name = config["TRANSPORT"]
    if name == "twilio":
        gateway = TwilioGateway(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            from_number=config["TWILIO_FROM_NUMBER"],
            messaging_service_sid=config["TWILIO_MESSAGING_SERVICE_SID"],
            base_url=config["TWILIO_API_BASE_URL"],
            timeouts=timeouts,
            pool_size=concurrency,
        )
        return TwilioTransport(gateway, config["PUBLIC_BASE_URL"], concurrency)
    if name == "missive":
        return MissiveTransport(missive_client(app), concurrency)
    return SimulatorTransport(concurrency)


def missive_client(app: Flask, **options: Any) -> MissiveClient:
    """A Missive client sharing the token's limits (5 slots and the per-minute pace, through
    Redis) with every other client of this token; `options` go to MissiveClient (a job that
    would rather come back later than wait out a 429 passes `max_429_waits=0`)."""
    config = app.config
    redis = get_redis(app)
    prefix = config["REDIS_KEY_PREFIX"]
    semaphore = RedisSemaphore(redis, f"{prefix}:missive:slots", MISSIVE_CONCURRENCY)
    api_pace = TokenBucket(
        redis, f"{prefix}:missive:api", MISSIVE_REQUESTS_PER_SECOND, burst=MISSIVE_BURST
    )
    return MissiveClient(
        token=config["MISSIVE_API_TOKEN"],
        base_url=config["MISSIVE_API_BASE_URL"],
        organization_id=config["MISSIVE_ORGANIZATION_ID"],
        from_number=config["MISSIVE_FROM_NUMBER"],
        timeouts=(config["PROVIDER_CONNECT_TIMEOUT"], config["PROVIDER_READ_TIMEOUT"]),
        pool_size=MISSIVE_CONCURRENCY,
        slot=semaphore.slot,
        pace=api_pace.acquire,
        **options,
    )


def get_transport(app: Flask) -> Transport:
    transport = app.extensions.get("transport")
    if transport is None:
        transport = app.extensions["transport"] = build_transport(app)
    return transport


def sender_bucket(
    app: Flask, transport: Transport, sleep: Callable[[float], Any] = time.sleep
) -> TokenBucket:
    """The sender's SMS pace (`SEND_RATE_MPS`, counted in segments), shared by every worker.
    `sleep` waits for a booked slot (a stop event's `wait` makes the wait end at a shutdown)."""
    key = f"{app.config['REDIS_KEY_PREFIX']}:pace:{transport.name}:{transport.sender}"
    return TokenBucket(get_redis(app), key, app.config["SEND_RATE_MPS"], sleep=sleep)
