"""Missive webhooks: HMAC over the raw body, incoming SMS like Twilio's, the mirror of
conversations and labels (removal and re-application), and the staff admin action with its note."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker

from app.extensions import db, get_redis
from app.jobs import QUEUE_DEFAULT, get_queue
from app.models import (
    AuditLog,
    Contact,
    ContactSource,
    InboundMessage,
    MessageStatus,
    MissiveConversation,
    MissiveConversationLabel,
    MissiveLabel,
    WebhookEvent,
    utcnow,
)
from app.segments.services import Audience, count_rule_contacts
from tests.factories import ContactFactory, sent_with_follow_up
from tests.webhooks.signing import OUR_NUMBER, hook_signature, post_missive

PHONE = "+13135550177"
OURS = OUR_NUMBER
ADMIN = "/webhooks/missive/admin-action"


def label(label_id: str, name: str, parent: str | None = None) -> dict:
    return {"id": label_id, "name": name, "name_with_parent_names": name, "parent": parent}


def conversation(conv_id: str = "conv-1", labels: list[dict] | None = None, **extra) -> dict:
    data = {
        "id": conv_id,
        "subject": None,
        "web_url": f"https://mail.missiveapp.com/#inbox/conversations/{conv_id}",
        "app_url": f"missive://mail.missiveapp.com/#inbox/conversations/{conv_id}",
        "authors": [{"name": PHONE, "phone_number": PHONE}],
        **extra,
    }
    if labels is not None:
        data["shared_labels"] = labels
    return data


def incoming(text: str, message_id: str = "msg-1", conv: dict | None = None, **message) -> dict:
    return {
        "rule": {"id": "rule-1", "description": "SMS in", "type": "incoming_sms_message"},
        "conversation": conv or conversation(),
        "message": {
            "id": message_id,
            "preview": text[:140],
            "body": text,
            "type": "twilio",
            "delivered_at": int(utcnow().timestamp()),
            "from_field": {"id": PHONE, "name": PHONE, "username": None},
            "to_fields": [{"id": OURS, "name": OURS, "username": None}],
            **message,
        },
    }


def rule(kind: str, conv: dict) -> dict:
    return {"rule": {"id": "rule-2", "description": kind, "type": kind}, "conversation": conv}


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# -- signatures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/webhooks/missive", f"{ADMIN}?action=unsubscribe"])
def test_signature_failures_are_403_and_store_nothing(hooks, path):
    body = json.dumps(incoming("hello")).encode()
    good = hook_signature(body)
    altered = body.replace(b"hello", b"hellp")
    assert altered != body
    for data, signature in (
        (body, ""),  # missing
        (body, hook_signature(body, secret="not-the-secret")),  # wrong secret
        (altered, good),  # the body altered by one byte
        (body, good.removeprefix("sha256=")),  # not in Missive's format
        (body, "sha256=" + "0" * 64),
    ):
        response = post_missive(hooks, data, path=path, signature=signature)
        assert response.status_code == 403, signature
    assert count(WebhookEvent) == 0 and count(InboundMessage) == 0
    assert count(MissiveConversation) == 0 and count(Contact) == 0


def test_the_signature_is_over_the_raw_bytes_not_a_re_serialised_payload(hooks):
    # Same JSON, other spacing and key order: only the bytes that were signed are accepted.
    raw = b'{"rule": {"type": "label_change"},   "conversation": {"id": "conv-9"}}'
    assert post_missive(hooks, raw).status_code == 200
    reserialised = json.dumps(json.loads(raw)).encode()
    assert post_missive(hooks, reserialised, signature=hook_signature(raw)).status_code == 403


def test_an_unconfigured_secret_refuses_everything(make_app):
    client = make_app(MISSIVE_WEBHOOK_SECRET="").test_client()
    body = json.dumps(incoming("hi")).encode()
    assert post_missive(client, body, signature=hook_signature(body, secret="")).status_code == 403


# -- incoming SMS ---------------------------------------------------------------------------------
def test_an_incoming_sms_is_stored_once_and_cancels_the_follow_up(hooks):
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    first, follow_up = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=3))
    db.session.commit()
    payload = incoming("Thank you!", conv=conversation("conv-7"))
    assert post_missive(hooks, payload).status_code == 200
    assert post_missive(hooks, payload).status_code == 200  # Missive retried
    rows = db.session.scalars(sa.select(InboundMessage)).all()
    assert len(rows) == 1
    inbound = rows[0]
    assert (inbound.provider, inbound.provider_id, inbound.contact_id) == (
        "missive",
        "msg-1",
        contact.id,
    )
    assert inbound.reply_to_id == first.id and inbound.missive_conversation_id == "conv-7"
    db.session.refresh(follow_up)
    assert follow_up.status == MessageStatus.CANCELLED and follow_up.cancel_reason == "replied"
    conv = db.session.scalar(sa.select(MissiveConversation))
    assert conv.missive_id == "conv-7" and conv.contact_id == contact.id and conv.phone == PHONE
    assert conv.web_url.endswith("conv-7")
    events = db.session.scalars(sa.select(WebhookEvent).order_by("id")).all()
    assert [e.source for e in events] == ["missive", "missive"]
    assert "duplicate" in events[1].outcome and events[0].payload == json.dumps(payload)


def test_twilios_sid_in_external_id_is_the_provider_id(hooks):
    post_missive(hooks, incoming("hi", external_id="SM" + "c" * 32))
    assert db.session.scalar(sa.select(InboundMessage.provider_id)) == "SM" + "c" * 32


def test_an_incoming_sms_from_a_new_number_creates_a_conversation_contact(hooks):
    post_missive(hooks, incoming("STOP"))
    contact = db.session.scalar(sa.select(Contact))
    assert contact.phone == PHONE and contact.source == ContactSource.CONVERSATION
    assert contact.unsubscribed


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "JSON"),
        (b"[1, 2]", "object"),
        ({"rule": {"type": "incoming_sms_message"}}, "conversation"),
        ({"rule": {"type": "incoming_sms_message"}, "conversation": {"id": "c"}}, "message"),
        (incoming("hi", from_field={"name": "Someone"}, conv={"id": "c"}), "phone number"),
        (incoming("hi", message_id=""), "message.id"),
        (incoming("hi", body=None, preview=5), "body"),
        (rule("label_change", conversation(labels="nope")), "shared_labels"),
        (rule("label_change", {"id": "x" * 65}), "conversation.id"),
    ],
)
def test_signed_but_unusable_payloads_are_400s_that_say_why(hooks, payload, message):
    response = post_missive(hooks, payload)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert count(InboundMessage) == 0
    assert db.session.scalar(sa.select(WebhookEvent.outcome)).startswith("rejected")


# -- the mirror -----------------------------------------------------------------------------------
def test_a_label_removed_then_re_applied_makes_the_contact_match_again(hooks):
    vip, news = label("lab-vip", "VIP"), label("lab-news", "Newsletter", parent="lab-parent")
    post_missive(hooks, rule("label_change", conversation(labels=[vip, news])))
    contact = db.session.scalar(sa.select(Contact).where(Contact.phone == PHONE))
    vip_id = db.session.scalar(
        sa.select(MissiveLabel.id).where(MissiveLabel.missive_id == "lab-vip")
    )
    has_vip = {"all": [{"type": "has_label", "label_id": vip_id}]}

    def matches() -> int:
        return count_rule_contacts(has_vip, purpose=Audience.BROADCAST)

    assert matches() == 1
    link = db.session.scalar(
        sa.select(MissiveConversationLabel).where(MissiveConversationLabel.label_id == vip_id)
    )
    first_applied = link.first_applied_at

    post_missive(hooks, rule("label_change", conversation(labels=[news])))
    db.session.refresh(link)
    assert link.removed and link.removed_at is not None
    assert matches() == 0

    post_missive(hooks, rule("label_change", conversation(labels=[news, vip])))
    db.session.refresh(link)
    assert not link.removed and link.removed_at is None
    assert link.first_applied_at == first_applied and link.last_applied_at > first_applied
    assert matches() == 1
    since_today = {"all": [{"type": "has_label", "label_id": vip_id, "since": "2000-01-01"}]}
    assert count_rule_contacts(since_today, purpose=Audience.BROADCAST) == 1
    assert contact.source == ContactSource.CONVERSATION
    labels = {row.missive_id: row for row in db.session.scalars(sa.select(MissiveLabel))}
    assert labels["lab-news"].parent_missive_id == "lab-parent" and labels["lab-vip"].name == "VIP"


def test_a_repeated_label_webhook_changes_nothing_and_a_rename_is_mirrored(hooks):
    payload = rule("label_change", conversation(labels=[label("lab-1", "Old name")]))
    post_missive(hooks, payload)
    post_missive(hooks, payload)
    assert count(MissiveConversationLabel) == 1
    post_missive(hooks, rule("label_change", conversation(labels=[label("lab-1", "New name")])))
    assert db.session.scalar(sa.select(MissiveLabel.name)) == "New name"
    outcomes = [e.outcome for e in db.session.scalars(sa.select(WebhookEvent).order_by("id"))]
    assert "1 label applied" in outcomes[0] and "label" not in outcomes[1].split(";")[-1]


def test_a_payload_without_a_label_list_leaves_the_labels_alone(hooks):
    post_missive(hooks, rule("label_change", conversation(labels=[label("lab-1", "A")])))
    post_missive(hooks, rule("conversation_closed", conversation()))
    link = db.session.scalar(sa.select(MissiveConversationLabel))
    assert not link.removed


def test_closed_and_reopened_set_the_conversation_flag(hooks):
    post_missive(hooks, rule("conversation_closed", conversation("conv-c")))
    assert db.session.scalar(sa.select(MissiveConversation.closed)) is True
    post_missive(hooks, rule("conversation_reopened", conversation("conv-c")))
    db.session.expire_all()
    assert db.session.scalar(sa.select(MissiveConversation.closed)) is False


def test_an_outgoing_sms_links_the_conversation_to_the_recipient(hooks):
    payload = {
        "rule": {"type": "outgoing_sms_message"},
        "conversation": {"id": "conv-out", "authors": []},
        "message": {
            "id": "m-out",
            "to_fields": [{"id": "+13135550188"}],
            "from_field": {"id": OURS},
        },
    }
    assert post_missive(hooks, payload).status_code == 200
    conv = db.session.scalar(sa.select(MissiveConversation))
    assert conv.contact.phone == "+13135550188" and count(InboundMessage) == 0


def test_an_unknown_rule_type_is_logged_and_answered(hooks):
    response = post_missive(hooks, {"rule": {"type": "team_change"}})
    assert response.status_code == 200
    assert db.session.scalar(sa.select(WebhookEvent.outcome)) == "team_change"


# -- admin action and Missive notes (missive transport, the fake Missive API) --------------------


def run_jobs(app: Flask) -> None:
    """Run the queued jobs in this process (the test's database connection)."""
    with app.app_context():
        worker = SimpleWorker([get_queue(app, QUEUE_DEFAULT)], connection=get_redis(app))
        worker.work(burst=True)


def comment(
    name: str = "Dana Reporter", comment_id: str = "cmt-1", body: str = "unsubscribe"
) -> dict:
    """A staff comment as Missive's rule webhook sends it, written just now."""
    return {
        "id": comment_id,
        "body": body,
        "created_at": int(utcnow().timestamp()),
        "author": {"id": "u1", "name": name},
    }


def test_admin_unsubscribe_cancels_pending_audits_the_staff_member_and_posts_a_note(
    missive_app, fake
):
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    _, follow_up = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=1))
    db.session.commit()
    client = missive_app.test_client()
    payload = {
        "rule": {"type": "new_comment"},
        "conversation": conversation("conv-a"),
        "comment": comment(),
    }
    response = post_missive(client, payload, path=f"{ADMIN}?action=unsubscribe")
    assert response.status_code == 200
    db.session.refresh(contact)
    db.session.refresh(follow_up)
    assert contact.unsubscribed and "Dana Reporter" in contact.unsubscribe_reason
    assert follow_up.status == MessageStatus.CANCELLED
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "contact_unsubscribe"))
    assert audit.actor == "Dana Reporter (Missive)"
    # Missive delivers the webhook again: nothing changes, and only one note is posted.
    post_missive(client, payload, path=f"{ADMIN}?action=unsubscribe")
    run_jobs(missive_app)
    posts = fake.posts()
    assert len(posts) == 1
    assert posts[0]["conversation"] == "conv-a" and posts[0]["username"] == "Broadcaster"
    assert posts[0]["text"].startswith(f"{PHONE} unsubscribed by Dana Reporter.")

    resubscribe = {**payload, "comment": comment(comment_id="cmt-2", body="Resubscribe")}
    post_missive(client, resubscribe, path=f"{ADMIN}?action=resubscribe")
    db.session.refresh(contact)
    assert not contact.unsubscribed
    run_jobs(missive_app)
    assert fake.posts()[-1]["text"] == f"{PHONE} resubscribed by Dana Reporter."


def test_admin_action_needs_a_known_action(hooks):
    payload = {"conversation": conversation(), "comment": comment()}
    response = post_missive(hooks, payload, path=f"{ADMIN}?action=delete")
    assert (
        response.status_code == 400 and "unsubscribe or resubscribe" in response.get_json()["error"]
    )
    assert count(Contact) == 0


def test_admin_action_on_a_conversation_without_a_phone_says_so_in_missive(missive_app, fake):
    client = missive_app.test_client()
    payload = {"conversation": {"id": "conv-x", "authors": []}, "comment": comment()}
    assert post_missive(client, payload, path=f"{ADMIN}?action=unsubscribe").status_code == 200
    run_jobs(missive_app)
    assert "knows no phone number" in fake.posts()[0]["text"]


def test_stop_and_start_by_sms_are_noted_in_the_conversation(missive_app, fake):
    client = missive_app.test_client()
    post_missive(client, incoming("Stop", message_id="m1", conv=conversation("conv-s")))
    post_missive(client, incoming("stop", message_id="m2", conv=conversation("conv-s")))  # no-op
    post_missive(client, incoming("UNSTOP", message_id="m3", conv=conversation("conv-s")))
    run_jobs(missive_app)
    texts = [p["text"] for p in fake.posts()]
    assert texts == [
        f"{PHONE} texted “Stop” and is unsubscribed.",
        f"{PHONE} texted “UNSTOP” and is resubscribed.",
    ]


def test_help_through_missive_gets_the_configured_reply_once(missive_app, fake):
    client = missive_app.test_client()
    post_missive(client, incoming("help", message_id="m-help"))
    post_missive(client, incoming("help", message_id="m-help"))
    run_jobs(missive_app)
    run_jobs(missive_app)
    drafts = fake.drafts()
    assert len(drafts) == 1 and drafts[0]["body"] == "Reply STOP to stop."


def test_with_another_transport_nothing_is_posted_to_missive(hooks, fake):
    post_missive(hooks, incoming("STOP"))
    assert get_queue(hooks.application, QUEUE_DEFAULT).count == 0
    assert fake.posts() == []
