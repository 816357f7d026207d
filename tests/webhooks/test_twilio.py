"""Twilio webhooks: signatures (403 and nothing stored), inbound SMS stored once with TwiML
answers, status callbacks applied monotonically whatever their order or repetition."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    AuditLog,
    Contact,
    ContactSource,
    InboundMessage,
    MessageStatus,
    WebhookEvent,
)
from app.webhooks.inbox import apply_pending_callbacks, pending_count
from tests.factories import ContactFactory, OutboundMessageFactory
from tests.webhooks.signing import (
    PUBLIC_BASE_URL,
    TWILIO_TOKEN,
    inbound_params,
    post_twilio,
    twilio_signature,
)

INBOUND = "/webhooks/twilio/inbound"
STATUS = "/webhooks/twilio/status"
PHONE = "+13135550101"


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def stored_nothing() -> bool:
    return count(InboundMessage) == 0 and count(WebhookEvent) == 0 and count(Contact) == 0


# -- signatures -----------------------------------------------------------------------------------
def test_a_missing_signature_is_refused_with_403_and_nothing_is_stored(hooks):
    response = post_twilio(hooks, INBOUND, inbound_params("SM1", PHONE, "hi"), signature="")
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.get_json()["error"]
    assert stored_nothing()


def test_a_wrong_signature_is_refused(hooks):
    params = inbound_params("SM1", PHONE, "hi")
    wrong = twilio_signature(PUBLIC_BASE_URL + INBOUND, params, token="another-token")
    assert post_twilio(hooks, INBOUND, params, signature=wrong).status_code == 403
    assert stored_nothing()


def test_a_body_altered_by_one_byte_is_refused(hooks):
    params = inbound_params("SM1", PHONE, "hello")
    signature = twilio_signature(PUBLIC_BASE_URL + INBOUND, params)
    altered = {**params, "Body": "hellp"}
    assert post_twilio(hooks, INBOUND, altered, signature=signature).status_code == 403
    assert stored_nothing()


def test_a_signature_over_another_url_is_refused(hooks):
    params = inbound_params("SM1", PHONE, "hi")
    for url in (
        "http://broadcaster.example.org" + INBOUND,  # the scheme the proxy saw, not the public one
        PUBLIC_BASE_URL + STATUS,
        PUBLIC_BASE_URL + INBOUND + "?x=1",
    ):
        response = post_twilio(hooks, INBOUND, params, signature=twilio_signature(url, params))
        assert response.status_code == 403, url
    assert stored_nothing()


def test_a_status_callback_signed_without_its_query_string_is_refused(hooks):
    params = {"MessageSid": "SMx", "MessageStatus": "delivered"}
    signature = twilio_signature(PUBLIC_BASE_URL + STATUS, params)
    assert post_twilio(hooks, STATUS + "?m=1", params, signature=signature).status_code == 403
    assert count(WebhookEvent) == 0


def test_no_auth_token_configured_refuses_everything(make_app):
    client = make_app(TWILIO_AUTH_TOKEN="", PUBLIC_BASE_URL=PUBLIC_BASE_URL).test_client()
    params = inbound_params("SM1", PHONE, "hi")
    signature = twilio_signature(PUBLIC_BASE_URL + INBOUND, params, token="")
    assert post_twilio(client, INBOUND, params, signature=signature).status_code == 403
    assert stored_nothing()


def test_behind_a_proxy_the_public_url_is_what_counts(make_app):
    """Heroku's router talks plain HTTP to the app, on another host name: the signature is over
    PUBLIC_BASE_URL, not what the request looks like from inside."""
    app = make_app(
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL, PROXY_FIX_HOPS=1
    )
    client = app.test_client()
    params = inbound_params("SMproxy", PHONE, "hello")
    response = client.post(
        INBOUND,
        data=params,
        headers={
            "X-Twilio-Signature": twilio_signature(PUBLIC_BASE_URL + INBOUND, params),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "54.0.0.1",
        },
        base_url="http://internal-dyno:31337",
    )
    assert response.status_code == 200
    assert count(InboundMessage) == 1


def test_a_signed_request_with_missing_fields_is_a_400_that_says_which(hooks):
    response = post_twilio(hooks, INBOUND, {"From": PHONE, "Body": "hi"})
    assert response.status_code == 400
    assert "MessageSid" in response.get_json()["error"]
    assert count(InboundMessage) == 0
    event = db.session.scalar(sa.select(WebhookEvent))
    assert event.outcome.startswith("rejected") and event.source == "twilio_inbound"


# -- inbound --------------------------------------------------------------------------------------
def test_an_inbound_reply_is_stored_once_and_answered_with_empty_twiml(hooks):
    params = inbound_params("SMdup", PHONE, "Thanks for the news")
    first = post_twilio(hooks, INBOUND, params)
    second = post_twilio(hooks, INBOUND, params)
    for response in (first, second):
        assert response.status_code == 200
        assert response.mimetype == "text/xml"
        assert response.get_data(as_text=True).endswith("<Response></Response>")
    rows = db.session.scalars(sa.select(InboundMessage)).all()
    assert len(rows) == 1
    assert (rows[0].provider, rows[0].provider_id, rows[0].phone) == ("twilio", "SMdup", PHONE)
    assert rows[0].keyword is None and rows[0].body == "Thanks for the news"
    outcomes = [e.outcome for e in db.session.scalars(sa.select(WebhookEvent).order_by("id"))]
    assert len(outcomes) == 2 and outcomes[1].startswith("duplicate")


def test_a_contact_created_by_an_inbound_message_has_source_conversation(hooks):
    post_twilio(hooks, INBOUND, inbound_params("SMnew", "(313) 555-0102", "Who is this?"))
    contact = db.session.scalar(sa.select(Contact))
    assert contact.phone == "+13135550102" and contact.source == ContactSource.CONVERSATION
    inbound = db.session.scalar(sa.select(InboundMessage))
    assert inbound.contact_id == contact.id


def test_an_upload_only_contact_who_texts_keeps_its_source(hooks):
    contact = ContactFactory(phone=PHONE, source=ContactSource.UPLOAD)
    db.session.commit()
    post_twilio(hooks, INBOUND, inbound_params("SMup", PHONE, "ok"))
    db.session.refresh(contact)
    assert contact.source == ContactSource.UPLOAD


def test_help_gets_the_configured_reply_escaped_and_only_once(make_app):
    app = make_app(
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        HELP_REPLY="Newsroom alerts <weekly>. Reply STOP to opt out.",
    )
    client = app.test_client()
    params = inbound_params("SMhelp", PHONE, " help? ")
    first = post_twilio(client, INBOUND, params).get_data(as_text=True)
    assert "<Message>Newsroom alerts &lt;weekly&gt;. Reply STOP to opt out.</Message>" in first
    again = post_twilio(client, INBOUND, params).get_data(as_text=True)
    assert "<Message>" not in again


def test_help_without_a_configured_reply_answers_nothing(hooks):
    body = post_twilio(hooks, INBOUND, inbound_params("SMh", PHONE, "INFO")).get_data(as_text=True)
    assert "<Message>" not in body
    assert db.session.scalar(sa.select(InboundMessage.keyword)) == "help"


def test_stop_by_twilio_unsubscribes_with_the_person_as_the_actor(hooks):
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    post_twilio(hooks, INBOUND, inbound_params("SMstop", PHONE, "Stop."))
    db.session.refresh(contact)
    assert contact.unsubscribed and "Stop." in contact.unsubscribe_reason
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "contact_unsubscribe"))
    assert audit.actor == f"{PHONE} (inbound STOP)" and audit.user_id is None


# -- status callbacks -----------------------------------------------------------------------------
@pytest.fixture
def sent_message():
    message = OutboundMessageFactory(sent=True, provider_status="queued")
    db.session.commit()
    return message


def callback(hooks, message, status: str, *, by_id: bool = True, **extra: str):
    path = f"{STATUS}?m={message.id}" if by_id else STATUS
    params = {
        "MessageSid": message.provider_sid,
        "MessageStatus": status,
        "AccountSid": "AC" + "0" * 32,
        **extra,
    }
    return post_twilio(hooks, path, params)


def test_status_callbacks_out_of_order_and_twice_end_at_the_furthest_status(hooks, sent_message):
    for status in ("delivered", "sent", "sending", "delivered", "sent"):
        assert callback(hooks, sent_message, status).status_code == 204
    # Accepted into the inbox, applied by the worker's bulk pass.
    assert pending_count() == 5 and count(WebhookEvent) == 0
    db.session.refresh(sent_message)
    assert sent_message.status == MessageStatus.SENT
    assert apply_pending_callbacks()["applied"] == 1
    assert pending_count() == 0
    db.session.refresh(sent_message)
    assert sent_message.status == MessageStatus.DELIVERED
    assert sent_message.provider_status == "delivered" and sent_message.delivered_at is not None
    outcomes = [e.outcome for e in db.session.scalars(sa.select(WebhookEvent).order_by("id"))]
    assert [o.endswith("applied") for o in outcomes] == [True, False, False, False, False]


def test_a_status_callback_without_our_id_is_matched_by_sid(hooks, sent_message):
    response = callback(hooks, sent_message, "undelivered", by_id=False, ErrorCode="30003")
    assert response.status_code == 204
    apply_pending_callbacks()
    db.session.refresh(sent_message)
    assert sent_message.status == MessageStatus.UNDELIVERED and sent_message.error_code == "30003"


def test_a_status_callback_for_a_message_claimed_but_unrecorded_resolves_it(hooks, sent_message):
    sent_message.status = MessageStatus.UNKNOWN
    sent_message.provider_sid = None
    db.session.commit()
    params = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "sent"}
    assert post_twilio(hooks, f"{STATUS}?m={sent_message.id}", params).status_code == 204
    apply_pending_callbacks()
    db.session.refresh(sent_message)
    assert sent_message.status == MessageStatus.SENT
    assert sent_message.provider_sid == "SM" + "b" * 32


def test_a_status_callback_for_an_unknown_message_is_logged_and_answered(hooks):
    params = {"MessageSid": "SMnope", "MessageStatus": "delivered"}
    assert post_twilio(hooks, f"{STATUS}?m=999999", params).status_code == 204
    assert apply_pending_callbacks() == {"applied": 0, "unchanged": 1, "busy": 0, "waiting": 0}
    assert db.session.scalar(sa.select(WebhookEvent.outcome)).endswith("no change")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (f"{STATUS}?m=abc", {"MessageStatus": "sent"}, "m must be"),
        (STATUS, {"MessageStatus": "sent"}, "MessageSid"),
        (f"{STATUS}?m=1", {"MessageSid": "SM1"}, "MessageStatus"),
        (f"{STATUS}?m=1", {"MessageSid": "SM1", "MessageStatus": "x" * 41}, "MessageStatus"),
    ],
)
def test_bad_status_callbacks_are_400s_naming_the_field(hooks, path, params, field):
    response = post_twilio(hooks, path, params)
    assert response.status_code == 400 and field in response.get_json()["error"]
