"""Twilio webhooks: inbound SMS (answered with TwiML) and message status callbacks."""

from __future__ import annotations

from xml.sax.saxutils import escape

from flask import Response, current_app, jsonify, request

from app.extensions import db
from app.inbound.services import InboundSMS, record_inbound
from app.integrations.twilio import valid_signature
from app.jobs.inbound import enqueue_inbound_follow_ups
from app.jobs.webhooks import nudge_status_applier
from app.sending.status import StatusUpdate
from app.settings.services import keyword_reply
from app.webhooks.inbox import accept_status_callback
from app.webhooks.services import BadPayload, log_webhook, payload_text, public_url

MAX_ID = 64
MAX_STATUS = 40
MAX_ERROR_CODE = 20


def twiml(message: str | None = None) -> Response:
    """An empty TwiML answer (Twilio sends nothing back), or one reply message."""
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return Response(body, status=200, mimetype="text/xml")


def signed_by_twilio() -> bool:
    """`X-Twilio-Signature` over our public URL (PUBLIC_BASE_URL + path + query, so it holds
    behind a proxy that rewrites host or scheme) and the form parameters as posted."""
    token = current_app.config["TWILIO_AUTH_TOKEN"]
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = public_url(
        current_app.config["PUBLIC_BASE_URL"],
        request.script_root + request.path,
        request.query_string,
    )
    return valid_signature(token, url, request.form, signature)


def refuse_unsigned() -> Response:
    response = jsonify(error="Missing or invalid X-Twilio-Signature: nothing was stored.")
    response.status_code = 403
    return response


def _field(name: str, *alternatives: str, limit: int, required: bool = True) -> str:
    for key in (name, *alternatives):
        value = request.form.get(key, "").strip()
        if value:
            if len(value) > limit:
                raise BadPayload(f"{name} is longer than {limit} characters.")
            return value
    if required:
        raise BadPayload(f"{name} is required.")
    return ""


def rejected(source: str, error: BadPayload) -> Response:
    log_webhook(source, request.get_data(), f"rejected: {error}")
    db.session.commit()
    response = jsonify(error=str(error))
    response.status_code = 400
    return response


def inbound() -> Response:
    """An SMS to our number: stored once, then acted on (SPEC 6.5). Answers empty TwiML, or the
    HELP reply / opt-out confirmation set under Settings (only the first delivery gets it)."""
    if not signed_by_twilio():
        return refuse_unsigned()
    try:
        sms = InboundSMS(
            provider="twilio",
            provider_id=_field("MessageSid", "SmsSid", limit=MAX_ID),
            phone=_field("From", limit=MAX_ID),
            body=request.form.get("Body", ""),
        )
    except BadPayload as error:
        return rejected("twilio_inbound", error)
    result = record_inbound(sms, reply_window_hours=current_app.config["REPLY_WINDOW_HOURS"])
    log_webhook("twilio_inbound", request.get_data(), result.outcome)
    db.session.commit()
    enqueue_inbound_follow_ups(current_app._get_current_object(), result)
    reply = None
    if not result.duplicate:
        reply = keyword_reply(
            result.keyword,
            subscription_changed=result.subscription_changed,
            default_help=current_app.config["HELP_REPLY"],
        )
    return twiml(reply)


def status() -> Response:
    """A delivery status for one of our messages, found by our id in the callback URL (`m`),
    else by its SID: stored in the inbox with one insert and answered 204; a worker applies it
    in bulk within about a second (monotonically: duplicates and late arrivals change nothing)
    and logs it with its outcome (app/webhooks/inbox.py)."""
    if not signed_by_twilio():
        return refuse_unsigned()
    try:
        raw_id = request.args.get("m", "").strip()
        if raw_id and not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18):
            raise BadPayload("m must be a message id (digits).")
        sid = _field("MessageSid", "SmsSid", limit=MAX_ID, required=not raw_id)
        update = StatusUpdate(
            provider_status=_field("MessageStatus", "SmsStatus", limit=MAX_STATUS),
            message_id=int(raw_id) if raw_id else None,
            provider_sid=sid or None,
            error_code=_field("ErrorCode", limit=MAX_ERROR_CODE, required=False) or None,
            error_message=request.form.get("ErrorMessage", "")[:500] or None,
        )
    except BadPayload as error:
        return rejected("twilio_status", error)
    accept_status_callback(update, payload_text(request.get_data()))
    db.session.commit()
    nudge_status_applier(current_app._get_current_object())
    return Response(status=204)
