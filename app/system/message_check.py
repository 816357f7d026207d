"""One outbound message beside what its provider says now (the `check-message` command): found by
our id or a SID, fetched from Twilio by SID through the real gateway, applied like any status."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.integrations import ProviderError
from app.models import OutboundMessage
from app.sending.reconcile import twilio_reader
from app.sending.status import StatusUpdate, apply_status_update

BIGINT_MAX = 2**63 - 1


def find_message(key: str) -> OutboundMessage | None:
    """The message with our id `key` (digits), else the one whose provider SID, or Twilio SID
    found for a Missive-sent message, is `key`."""
    key = key.strip()
    if not key:
        return None
    if key.isdigit():
        number = int(key)
        return db.session.get(OutboundMessage, number) if number <= BIGINT_MAX else None
    return db.session.scalars(
        sa.select(OutboundMessage)
        .where(sa.or_(OutboundMessage.provider_sid == key, OutboundMessage.twilio_sid == key))
        .limit(1)
    ).first()


def twilio_sid_of(message: OutboundMessage) -> str | None:
    """The SID Twilio knows the message by: a Missive-sent message keeps Missive's id as its
    provider id and gets its Twilio SID from reconciliation."""
    if message.transport == "missive":
        return message.twilio_sid
    if message.transport == "twilio":
        return message.provider_sid
    return None


@dataclass
class ProviderAnswer:
    """What Twilio said about one message, or why it could not be asked (`reason`)."""

    checked: bool
    reason: str = ""
    sid: str | None = None
    status: str | None = None
    error_code: str | None = None
    failed: bool = False  # Twilio was asked and did not answer (exit non-zero)
    applied: bool = False


def check_message(app: Flask, message: OutboundMessage) -> ProviderAnswer:
    """Fetch `message` from Twilio by SID and apply its status (monotonic, through
    `apply_status_update`); the caller commits. Says why when it cannot be checked."""
    if message.transport in (None, "simulator"):
        how = "was never handed to a provider" if message.transport is None else "was simulated"
        return ProviderAnswer(
            False,
            f"It {how}, so there is no provider status to check (transport: "
            f"{message.transport or 'none yet'}).",
        )
    sid = twilio_sid_of(message)
    if not sid:
        if message.transport == "missive":
            why = (
                "It was sent through Missive and no Twilio SID has been found for it yet (the "
                "daily status reconciliation looks for it in Twilio's list of messages)"
            )
        else:
            why = "It has no Twilio SID (Twilio never confirmed accepting it)"
        return ProviderAnswer(False, f"{why}, so Twilio cannot be asked about it by SID.")
    gateway = twilio_reader(app)
    if gateway is None:
        return ProviderAnswer(
            False,
            "No Twilio credentials are configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN), so "
            "Twilio cannot be asked.",
            sid=sid,
        )
    try:
        found = gateway.fetch(sid)
    except ProviderError as exc:
        return ProviderAnswer(
            False, f"Twilio did not answer: {exc.message or exc.kind}", sid=sid, failed=True
        )
    if found is None:
        return ProviderAnswer(False, f"Twilio has no message with the SID {sid}.", sid=sid)
    status = (found.status or "").strip().lower()[:40]
    applied = apply_status_update(
        StatusUpdate(
            provider_status=status,
            message_id=message.id,
            provider_sid=None if message.transport == "missive" else sid,
            error_code=found.error_code,
        )
    )
    return ProviderAnswer(
        True, sid=sid, status=status, error_code=found.error_code, applied=applied
    )
