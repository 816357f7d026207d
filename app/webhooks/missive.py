"""Missive webhooks: rule webhooks (SMS in and out, label changes, closed/reopened) and the
staff "admin action" (unsubscribe/resubscribe from a comment, once per comment, only while the
comment is fresh). HMAC over the raw body."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, jsonify, request

from app.contacts.phones import normalize_phone
from app.extensions import db
from app.inbound.mirror import ConversationData, LabelData, MirrorResult, sync_conversation
from app.inbound.services import InboundSMS, apply_admin_action, record_inbound
from app.jobs.inbound import enqueue_admin_note, enqueue_inbound_follow_ups
from app.models import Contact, Setting, utcnow
from app.webhooks.services import BadPayload, log_webhook, valid_hook_signature

INCOMING = {"incoming_sms_message", "incoming_twilio_message"}
OUTGOING = {"outgoing_sms_message", "outgoing_twilio_message"}
CLOSED = {"conversation_closed": True, "conversation_reopened": False}
ACTIONS = {"unsubscribe": True, "resubscribe": False}
PHONE_KEYS = ("phone_number", "id", "username", "name")

# What a staff comment asks for is read from its first word ("Unsubscribe: asked by phone",
# "opt-out."). "stop" and "start" are everyday words, so they count only as the whole comment
# ("Stop!"), never as the start of a sentence ("Start date is Monday", "stop by later").
LEADING_WORDS = {
    "unsubscribe": "unsubscribe",
    "optout": "unsubscribe",
    "resubscribe": "resubscribe",
    "optin": "resubscribe",
}
WHOLE_COMMENT_WORDS = {"stop": "unsubscribe", "start": "resubscribe", "unstop": "resubscribe"}
_WORD = re.compile(r"[^\W\d_]+")
_HYPHEN_IN_WORD = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011\u2013\u2014]+(?=[^\W\d_])")
# A signed admin-action body is good for this long after the comment was written (by its
# created_at), so a body captured later cannot be replayed once its claim is pruned.
COMMENT_MAX_AGE = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=5)
CLAIM_PREFIX = "admin-comment:"  # Setting key of a comment acted on: admin-comment:<comment id>


def signed_by_missive(secret: str) -> bool:
    return valid_hook_signature(secret, request.get_data(), request.headers.get("X-Hook-Signature"))


def admin_secret() -> str:
    """The admin action's own secret (MISSIVE_ADMIN_WEBHOOK_SECRET), else the rules' secret."""
    config = current_app.config
    return config["MISSIVE_ADMIN_WEBHOOK_SECRET"] or config["MISSIVE_WEBHOOK_SECRET"]


def refuse_unsigned() -> Response:
    response = jsonify(error="Missing or invalid X-Hook-Signature: nothing was stored.")
    response.status_code = 403
    return response


# -- reading payloads: every field checked for type and size, so odd input is a 400 ------------
def _object(value: Any, what: str, required: bool = True) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is None and not required:
        return {}
    raise BadPayload(f"{what} must be an object.")


def _text(value: Any, what: str, limit: int, required: bool = False) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        if required:
            raise BadPayload(f"{what} is required.")
        return None
    if not isinstance(value, str):
        raise BadPayload(f"{what} must be a string.")
    if len(value) > limit:
        raise BadPayload(f"{what} is longer than {limit} characters.")
    if "\x00" in value:
        raise BadPayload(f"{what} contains a NUL character.")
    return value


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadPayload("The body must be JSON.") from exc
    return _object(payload, "The payload")


def parse_conversation(payload: dict[str, Any], required: bool = True) -> ConversationData | None:
    if payload.get("conversation") is None and not required:
        return None
    conversation = _object(payload.get("conversation"), "conversation")
    labels = None
    if "shared_labels" in conversation:
        raw_labels = conversation["shared_labels"]
        if not isinstance(raw_labels, list):
            raise BadPayload("conversation.shared_labels must be a list.")
        parsed = {}
        for item in raw_labels[:500]:
            label = _object(item, "conversation.shared_labels[]")
            label_id = _text(label.get("id"), "shared_labels[].id", 64, required=True)
            parent = label.get("parent")
            if isinstance(parent, dict):
                parent = parent.get("id")
            name = _text(label.get("name"), "shared_labels[].name", 200) or label_id
            parsed[label_id] = LabelData(label_id, name, _text(parent, "parent", 64))
        labels = tuple(parsed.values())
    return ConversationData(
        missive_id=_text(conversation.get("id"), "conversation.id", 64, required=True),
        web_url=_text(conversation.get("web_url"), "conversation.web_url", 500),
        app_url=_text(conversation.get("app_url"), "conversation.app_url", 500),
        labels=labels,
    )


def _phone_of(field: Any) -> str | None:
    if not isinstance(field, dict):
        return None
    for key in PHONE_KEYS:
        value = field.get(key)
        if isinstance(value, str) and len(value) <= 40:
            phone = normalize_phone(value)
            if phone:
                return phone
    return None


def _our_numbers() -> set[str]:
    config = current_app.config
    numbers = (config["MISSIVE_FROM_NUMBER"], config["TWILIO_FROM_NUMBER"])
    return {n for n in (normalize_phone(x) for x in numbers if x) if n}


def conversation_phone(payload: dict[str, Any]) -> str | None:
    """The person's number from the conversation's authors, when exactly one is not ours."""
    conversation = payload.get("conversation")
    authors = conversation.get("authors") if isinstance(conversation, dict) else None
    if not isinstance(authors, list):
        return None
    phones = {_phone_of(author) for author in authors[:50]} - {None} - _our_numbers()
    return phones.pop() if len(phones) == 1 else None


def _received_at(message: dict[str, Any]) -> datetime | None:
    stamp = message.get("delivered_at") or message.get("created_at")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return None
    now = utcnow()
    try:
        moment = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    # A clock far off (or a made-up value) is not trusted: the reply window depends on it.
    return moment if now - timedelta(days=7) <= moment <= now + timedelta(minutes=5) else None


def parse_incoming(payload: dict[str, Any], conversation: ConversationData) -> InboundSMS:
    message = _object(payload.get("message"), "message")
    message_id = _text(message.get("id"), "message.id", 64, required=True)
    external = message.get("external_id")
    # Missive's Twilio integration carries Twilio's MessageSid: using it as our provider id
    # stores a message once even if it also reached the Twilio inbound webhook.
    if isinstance(external, str) and external[:2] in ("SM", "MM") and len(external) <= 64:
        message_id = external
    phone = _phone_of(message.get("from_field")) or conversation_phone(payload)
    if phone is None:
        raise BadPayload("message.from_field has no phone number.")
    body = message.get("body")
    if not isinstance(body, str):
        body = message.get("preview")
    if body is not None and not isinstance(body, str):
        raise BadPayload("message.body must be a string.")
    return InboundSMS(
        provider="missive",
        provider_id=message_id,
        phone=phone,
        body=(body or "").replace("\x00", ""),
        received_at=_received_at(message),
        missive_conversation_id=conversation.missive_id,
    )


def _outgoing_phone(payload: dict[str, Any]) -> str | None:
    message = payload.get("message")
    fields = message.get("to_fields") if isinstance(message, dict) else None
    if isinstance(fields, list):
        phones = {_phone_of(field) for field in fields[:20]} - {None} - _our_numbers()
        if len(phones) == 1:
            return phones.pop()
    return conversation_phone(payload)


def comment_action(text: str) -> str | None:
    """What a staff comment asks for: "unsubscribe", "resubscribe" or None (see LEADING_WORDS).
    Case, punctuation, spacing and hyphens ("Re-subscribe", "OPT OUT.") do not matter."""
    words = _WORD.findall(_HYPHEN_IN_WORD.sub("", text[:500].casefold()))
    if words[:2] in (["opt", "out"], ["opt", "in"]):
        words = ["opt" + words[1], *words[2:]]
    if not words:
        return None
    if len(words) == 1 and words[0] in WHOLE_COMMENT_WORDS:
        return WHOLE_COMMENT_WORDS[words[0]]
    return LEADING_WORDS.get(words[0])


@dataclass(frozen=True)
class AdminComment:
    id: str
    action: str | None  # from the signed comment text
    staff: str
    created_at: datetime


def _comment_time(value: Any) -> datetime:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadPayload("comment.created_at is required (Unix time in seconds).")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise BadPayload("comment.created_at is not a usable Unix time.") from exc


def parse_comment(payload: dict[str, Any]) -> AdminComment:
    comment = _object(payload.get("comment"), "comment")
    author = _object(comment.get("author"), "comment.author", required=False)
    staff = (
        _text(author.get("name"), "comment.author.name", 200)
        or _text(author.get("email"), "comment.author.email", 254)
        or "a Missive user"
    )
    return AdminComment(
        id=_text(comment.get("id"), "comment.id", 64, required=True),
        action=comment_action(_text(comment.get("body"), "comment.body", 20_000) or ""),
        staff=staff,
        created_at=_comment_time(comment.get("created_at")),
    )


def claim_comment(comment: AdminComment, conversation_id: str, retention_days: int) -> bool:
    """Record that `comment` is acted on, once: False if it already was (a replay, or the same
    delivery racing this one). The claim is a Setting row keyed by the comment id, so its
    primary key makes it atomic and durable; claims older than the retention are dropped.
    The caller commits (or rolls back, releasing the claim)."""
    db.session.execute(
        sa.delete(Setting).where(
            Setting.key.startswith(CLAIM_PREFIX),
            Setting.updated_at < utcnow() - timedelta(days=retention_days),
        )
    )
    claim = sa.insert(Setting).values(
        key=CLAIM_PREFIX + comment.id,
        value={
            "action": comment.action,
            "staff": comment.staff,
            "conversation": conversation_id,
            "written_at": comment.created_at.isoformat(),
        },
    )
    try:
        with db.session.begin_nested():
            db.session.execute(claim)
    except sa.exc.IntegrityError:
        return False
    return True


def rejected(source: str, error: BadPayload) -> Response:
    log_webhook(source, request.get_data(), f"rejected: {error}")
    db.session.commit()
    response = jsonify(error=str(error))
    response.status_code = 400
    return response


# -- the endpoints ------------------------------------------------------------------------------
def rules() -> Response:
    """Every Missive rule webhook: the conversation is mirrored whatever the rule; an incoming
    SMS is processed like a Twilio one; closed/reopened set the flag."""
    if not signed_by_missive(current_app.config["MISSIVE_WEBHOOK_SECRET"]):
        return refuse_unsigned()
    inbound = None
    try:
        payload = parse_body(request.get_data())
        rule = _object(payload.get("rule"), "rule", required=False)
        rule_type = _text(rule.get("type"), "rule.type", 60) or ""
        conversation = parse_conversation(payload, required=rule_type in INCOMING)
        if rule_type in INCOMING:
            inbound = parse_incoming(payload, conversation)
            phone = inbound.phone
        elif rule_type in OUTGOING:
            phone = _outgoing_phone(payload)
        else:
            phone = conversation_phone(payload)
    except BadPayload as error:
        return rejected("missive", error)
    outcomes = [rule_type or "no rule type"]
    mirror: MirrorResult | None = None
    if conversation is not None:
        mirror = sync_conversation(conversation, phone=phone, closed=CLOSED.get(rule_type))
        outcomes.append(f"conversation {conversation.missive_id}")
        if mirror.outcome:
            outcomes.append(mirror.outcome)
    result = None
    if inbound is not None:
        result = record_inbound(
            inbound, reply_window_hours=current_app.config["REPLY_WINDOW_HOURS"]
        )
        outcomes.append(result.outcome)
    outcome = "; ".join(outcomes)
    log_webhook("missive", request.get_data(), outcome)
    db.session.commit()
    if result is not None:
        enqueue_inbound_follow_ups(current_app._get_current_object(), result)
    return jsonify(ok=True, outcome=outcome)


def _age_in_words(age: timedelta) -> str:
    minutes = int(abs(age).total_seconds() // 60)
    if minutes >= 2 * 24 * 60:
        span = f"{minutes // (24 * 60)} days"
    elif minutes >= 2 * 60:
        span = f"{minutes // 60} hours"
    else:
        span = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{span} after it was written" if age >= timedelta(0) else f"dated {span} ahead"


def _admin_answer(
    outcome: str, *, status: int = 200, ok: bool = True, note: tuple[str, str, str] | None = None
) -> Response:
    """Log the call and commit, then post `note` (conversation, text, comment id) to Missive
    once per comment, and answer: the outcome with a 2xx, or as the error with a 4xx."""
    log_webhook("missive_admin", request.get_data(), outcome)
    db.session.commit()
    if note is not None:
        conversation_id, text, comment_id = note
        enqueue_admin_note(
            current_app._get_current_object(), conversation_id, text, key=f"admin:{comment_id}"
        )
    response = jsonify(error=outcome) if status >= 400 else jsonify(ok=ok, outcome=outcome)
    response.status_code = status
    return response


def admin_action() -> Response:
    """A staff comment asking to unsubscribe or resubscribe the conversation's contact: done
    under their name, noted in the conversation. The action is read from the signed comment
    text; an `?action=` in the rule's URL is not signed, so it may only confirm it. Each comment
    acts once (a replay is answered 200 "already done" and changes nothing), and only within
    COMMENT_MAX_AGE of being written: an older one is refused with a 200 (retrying cannot make
    it younger) and a note saying so, so a person who meant it can comment again."""
    if not signed_by_missive(admin_secret()):
        return refuse_unsigned()
    try:
        payload = parse_body(request.get_data())
        conversation = parse_conversation(payload)
        comment = parse_comment(payload)
        asked = request.args.get("action") or None
        if asked is not None and asked not in ACTIONS:
            raise BadPayload("action must be unsubscribe or resubscribe.")
        if asked and comment.action and asked != comment.action:
            raise BadPayload(
                f"The comment asks to {comment.action} but the webhook URL says "
                f"action={asked}: nothing was done."
            )
    except BadPayload as error:
        return rejected("missive_admin", error)
    if comment.action is None:
        if asked is None:
            # Any other comment a broad rule sends: nothing to do, and nothing wrong.
            return _admin_answer(f"comment {comment.id}: not an admin action")
        return _admin_answer(
            f"The comment does not start with “{asked}”: nothing was done.",
            status=400,
            note=(
                conversation.missive_id,
                f"Broadcaster did nothing: start the comment with “{asked}” to {asked}.",
                comment.id,
            ),
        )
    action = comment.action
    if db.session.get(Setting, CLAIM_PREFIX + comment.id) is not None:
        return _admin_answer(f"already done: comment {comment.id} ({action})")
    age = utcnow() - comment.created_at
    if not -CLOCK_SKEW <= age <= COMMENT_MAX_AGE:
        when = _age_in_words(age)
        return _admin_answer(
            f"refused: comment {comment.id} ({action}) arrived {when}; the limit is 10 minutes",
            ok=False,
            note=(
                conversation.missive_id,
                f"Broadcaster did not {action}: this comment reached it {when}, and admin "
                f"actions count only within 10 minutes. Comment “{action}” again to do it.",
                comment.id,
            ),
        )
    if not claim_comment(comment, conversation.missive_id, current_app.config["RETENTION_DAYS"]):
        return _admin_answer(f"already done: comment {comment.id} ({action})")
    mirror = sync_conversation(conversation, phone=conversation_phone(payload))
    staff = comment.staff
    if mirror.contact_id is None:
        outcome = (
            f"{action} by {staff}: no contact known for conversation {conversation.missive_id}"
        )
        note = f"Could not {action}: Broadcaster knows no phone number for this conversation."
    else:
        unsubscribe = ACTIONS[action]
        changed, cancelled = apply_admin_action(
            mirror.contact_id, unsubscribe=unsubscribe, staff_name=staff
        )
        phone = db.session.get_one(Contact, mirror.contact_id).phone
        done = "unsubscribed" if unsubscribe else "resubscribed"
        if changed:
            outcome = f"{phone} {done} by {staff}, {cancelled} pending cancelled"
            note = f"{phone} {done} by {staff}."
            if cancelled:
                note += f" {cancelled} pending message{'s' if cancelled != 1 else ''} cancelled."
        else:
            outcome = f"{phone} already {done}"
            note = f"{phone} was already {done}."
    return _admin_answer(outcome, note=(conversation.missive_id, note, comment.id))
