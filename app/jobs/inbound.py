"""Inbound jobs: notes posted to Missive conversations, the HELP reply through Missive, and the
webhook log's retention. Enqueued only after the commit that made their rows."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from redis.exceptions import RedisError

from app.extensions import db, get_redis
from app.inbound.services import InboundResult, conversation_for_contact
from app.jobs import QUEUE_DEFAULT, get_queue
from app.models import Contact, InboundMessage, Keyword
from app.sending.transports import get_transport
from app.settings.services import keyword_reply

log = logging.getLogger(__name__)
POST_JOB = "app.jobs.inbound.post_conversation_note"
REPLY_JOB = "app.jobs.inbound.send_keyword_reply"
DONE_TTL_SECONDS = 7 * 24 * 3600


def _missive(app: Flask) -> bool:
    return app.config["TRANSPORT"] == "missive"


def _enqueue(app: Flask, func: str, *args: Any) -> None:
    # The rows are committed; a Redis outage loses only this courtesy note, never data.
    try:
        get_queue(app, QUEUE_DEFAULT).enqueue(func, *args, result_ttl=600, failure_ttl=86400)
    except RedisError as exc:
        log.warning("could not enqueue %s%r: %s", func, args, exc)


def enqueue_inbound_follow_ups(app: Flask, result: InboundResult) -> None:
    """After the commit: with the missive transport, a note in the conversation for an opt-out or
    opt-in, and the HELP reply or opt-out confirmation for a keyword that came through Missive."""
    if not _missive(app) or result.duplicate or result.contact_id is None:
        return
    inbound = db.session.get(InboundMessage, result.inbound_id)
    if result.subscription_changed:
        conversation = conversation_for_contact(result.contact_id, inbound.missive_conversation_id)
        if conversation:
            if result.keyword == Keyword.STOP:
                text = f"{inbound.phone} texted “{inbound.body.strip()[:60]}” and is unsubscribed."
                if result.cancelled:
                    text += f" {result.cancelled} pending message(s) cancelled."
            else:
                text = f"{inbound.phone} texted “{inbound.body.strip()[:60]}” and is resubscribed."
            _enqueue(app, POST_JOB, conversation, text, f"inbound:{inbound.id}")
    reply = keyword_reply(
        result.keyword,
        subscription_changed=result.subscription_changed,
        default_help=app.config["HELP_REPLY"],
    )
    if reply and inbound.provider == "missive":
        _enqueue(app, REPLY_JOB, inbound.id, result.subscription_changed)


def enqueue_admin_note(app: Flask, conversation_id: str, text: str, key: str) -> None:
    if _missive(app):
        _enqueue(app, POST_JOB, conversation_id, text, key)


def _claim_once(app: Flask, key: str) -> bool:
    """True the first time `key` is claimed (for a week): a job that runs twice posts once."""
    name = f"{app.config['REDIS_KEY_PREFIX']}:inbound-done:{key}"
    return bool(get_redis(app).set(name, "1", nx=True, ex=DONE_TTL_SECONDS))


def _release(app: Flask, key: str) -> None:
    get_redis(app).delete(f"{app.config['REDIS_KEY_PREFIX']}:inbound-done:{key}")


def post_conversation_note(conversation_id: str, text: str, key: str) -> dict[str, Any]:
    """Post `text` to the Missive conversation once per `key`. A failed post releases the key
    and raises, so the job can be retried without posting twice."""
    app = current_app._get_current_object()
    if not _missive(app):
        return {"skipped": "the missive transport is not configured"}
    if not _claim_once(app, f"post:{key}"):
        return {"skipped": "already posted"}
    posted = False
    try:
        post_id = get_transport(app).client.create_post(  # type: ignore[attr-defined]
            conversation_id, text, username=app.config["MISSIVE_POST_USERNAME"]
        )
        posted = True
    finally:
        if not posted:
            _release(app, f"post:{key}")
    return {"post": post_id, "conversation": conversation_id}


def send_keyword_reply(inbound_id: int, subscription_changed: bool = False) -> dict[str, Any]:
    """Answer a HELP/INFO (or confirm an opt-out) that came through Missive with the text set
    under Settings, once."""
    app = current_app._get_current_object()
    inbound = db.session.get(InboundMessage, inbound_id)
    if inbound is None or not _missive(app):
        return {"skipped": "nothing to answer"}
    reply = keyword_reply(
        inbound.keyword,
        subscription_changed=subscription_changed,
        default_help=app.config["HELP_REPLY"],
    )
    if not reply:
        return {"skipped": "nothing to answer"}
    contact = db.session.get(Contact, inbound.contact_id) if inbound.contact_id else None
    if contact is None:
        return {"skipped": "no contact"}
    if not _claim_once(app, f"reply:{inbound_id}"):
        return {"skipped": "already answered"}
    answered = False
    try:
        sent = get_transport(app).client.send_sms(contact.phone, reply)  # type: ignore[attr-defined]
        answered = True
    finally:
        if not answered:
            _release(app, f"reply:{inbound_id}")
    return {"draft": sent.sid}
