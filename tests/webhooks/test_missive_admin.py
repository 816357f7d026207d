"""The Missive admin action cannot be replayed: the action comes from the signed comment text,
each comment acts once (durably, in the database), comments older than ten minutes are refused,
and the endpoint can have a secret of its own."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, Contact, Setting, WebhookEvent, utcnow
from app.webhooks.missive import AdminComment, claim_comment, comment_action
from tests.factories import ContactFactory
from tests.webhooks.signing import HOOK_SETTINGS, hook_signature, post_missive
from tests.webhooks.test_missive import PHONE, conversation, incoming, run_jobs

ADMIN = "/webhooks/missive/admin-action"


def comment_payload(
    body: str = "unsubscribe",
    comment_id: str = "cmt-1",
    age: timedelta = timedelta(seconds=5),
    conv_id: str = "conv-a",
) -> dict:
    return {
        "rule": {"id": "rule-9", "type": "new_comment"},
        "conversation": conversation(conv_id),
        "comment": {
            "id": comment_id,
            "body": body,
            "created_at": int((utcnow() - age).timestamp()),
            "author": {"id": "u1", "name": "Dana Reporter", "email": "dana@example.org"},
        },
    }


def audits() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog))


def outcomes() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(WebhookEvent.outcome)
            .where(WebhookEvent.source == "missive_admin")
            .order_by(WebhookEvent.id)
        )
    )


# -- the action comes from the signed comment --------------------------------------------------
@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("unsubscribe", "unsubscribe"),
        ("Unsubscribe.", "unsubscribe"),
        ("  UNSUBSCRIBE! they asked by phone", "unsubscribe"),
        ("unsubscribe: asked at the front desk", "unsubscribe"),
        ("Opt out", "unsubscribe"),
        ("OPT-OUT.", "unsubscribe"),
        ("optout", "unsubscribe"),
        ("Stop", "unsubscribe"),
        (" stop! ", "unsubscribe"),
        ("Resubscribe", "resubscribe"),
        ("re-subscribe please", "resubscribe"),
        ("resubscribe, she texted us by mistake", "resubscribe"),
        ("Opt in", "resubscribe"),
        ("START", "resubscribe"),
        ("unstop", "resubscribe"),
        ("...Resubscribe", "resubscribe"),
    ],
)
def test_the_action_is_the_comments_first_word(text, action):
    assert comment_action(text) == action


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "please unsubscribe them",  # the word has to lead: the rule may match any comment
        "Do not unsubscribe",
        "unsubscribed already",
        "subscribe",
        "Start date is Monday",  # "stop"/"start" only as the whole comment
        "stop by later",
        "stopped",
        "Starting tomorrow",
        "opt",
        "42",
    ],
)
def test_other_comments_ask_for_nothing(text):
    assert comment_action(text) is None


def test_the_action_is_taken_from_the_comment_without_a_query_string(hooks):
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    response = post_missive(hooks, comment_payload("Unsubscribe, asked by phone"), path=ADMIN)
    assert response.status_code == 200, response.get_json()
    db.session.refresh(contact)
    assert contact.unsubscribed and "Dana Reporter" in contact.unsubscribe_reason


def test_a_query_string_that_disagrees_with_the_signed_comment_is_refused(hooks):
    """The query string is not signed: someone holding a signed "unsubscribe" body cannot turn it
    into a resubscribe by editing the URL."""
    contact = ContactFactory(phone=PHONE, unsubscribed=True)
    db.session.commit()
    response = post_missive(
        hooks, comment_payload("unsubscribe"), path=f"{ADMIN}?action=resubscribe"
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == (
        "The comment asks to unsubscribe but the webhook URL says action=resubscribe: "
        "nothing was done."
    )
    db.session.refresh(contact)
    assert contact.unsubscribed
    assert db.session.get(Setting, "admin-comment:cmt-1") is None
    # The same comment through the right URL still acts: the refusal claimed nothing.
    right = post_missive(hooks, comment_payload("unsubscribe"), path=f"{ADMIN}?action=unsubscribe")
    assert right.status_code == 200
    assert db.session.get(Setting, "admin-comment:cmt-1") is not None


def test_a_comment_that_names_no_action_does_nothing(missive_app, fake):
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    client = missive_app.test_client()
    # A rule that sends every comment: an ordinary comment is answered 200 and ignored.
    ordinary = post_missive(client, comment_payload("Start date is Monday", "c-0"), path=ADMIN)
    assert ordinary.status_code == 200 and ordinary.get_json()["ok"]
    # A rule meant for unsubscribing that fired on "please unsubscribe": refused, and said so
    # in the conversation so the staff member knows nothing happened.
    asked = post_missive(
        client, comment_payload("please unsubscribe", "c-1"), path=f"{ADMIN}?action=unsubscribe"
    )
    assert asked.status_code == 400
    assert "does not start with “unsubscribe”" in asked.get_json()["error"]
    db.session.refresh(contact)
    assert not contact.unsubscribed and audits() == 0
    run_jobs(missive_app)
    assert [post["text"] for post in fake.posts()] == [
        "Broadcaster did nothing: start the comment with “unsubscribe” to unsubscribe."
    ]


@pytest.mark.parametrize(
    ("comment", "error"),
    [
        ({"body": "unsubscribe", "created_at": 1}, "comment.id is required."),
        ({"id": "", "body": "unsubscribe", "created_at": 1}, "comment.id is required."),
        ({"id": "c", "body": "unsubscribe"}, "comment.created_at is required"),
        ({"id": "c", "body": "unsubscribe", "created_at": "yesterday"}, "created_at is required"),
        ({"id": "c", "body": "unsubscribe", "created_at": 10**15}, "not a usable Unix time"),
        ({"id": "c" * 65, "body": "unsubscribe", "created_at": 1}, "longer than 64"),
    ],
)
def test_an_admin_action_needs_the_comment_id_and_time(hooks, comment, error):
    ContactFactory(phone=PHONE)
    db.session.commit()
    payload = {"conversation": conversation(), "comment": comment}
    response = post_missive(hooks, payload, path=f"{ADMIN}?action=unsubscribe")
    assert response.status_code == 400 and error in response.get_json()["error"]
    assert db.session.scalar(sa.select(Contact.unsubscribed)) is False
    assert outcomes()[0].startswith("rejected: ")


def test_an_admin_action_without_a_comment_is_refused(hooks):
    payload = {"conversation": conversation()}
    response = post_missive(hooks, payload, path=f"{ADMIN}?action=unsubscribe")
    assert response.status_code == 400 and response.get_json()["error"] == (
        "comment must be an object."
    )


# -- each comment acts once ----------------------------------------------------------------------
def test_a_replayed_resubscribe_cannot_undo_a_later_stop(missive_app, fake, redis_conn):
    """The review's attack: a captured "resubscribe" body sent again after the person texted STOP.
    The comment already acted, so the replay is answered 200 "already done" (Missive's own
    retries stop) and nothing changes, even with Redis emptied: the claim is in the database."""
    contact = ContactFactory(phone=PHONE, unsubscribed=True)
    db.session.commit()
    client = missive_app.test_client()
    resubscribe = comment_payload("resubscribe", "cmt-r")
    assert post_missive(client, resubscribe, path=ADMIN).status_code == 200
    db.session.refresh(contact)
    assert not contact.unsubscribed
    assert post_missive(client, incoming("STOP", "m-stop", conv=conversation("conv-a"))).status_code
    db.session.refresh(contact)
    assert contact.unsubscribed
    before = audits()
    run_jobs(missive_app)
    notes = [post["text"] for post in fake.posts()]
    assert notes == [
        f"{PHONE} resubscribed by Dana Reporter.",
        f"{PHONE} texted “STOP” and is unsubscribed.",
    ]

    redis_conn.flushdb()
    for path in (ADMIN, f"{ADMIN}?action=resubscribe"):
        replay = post_missive(client, resubscribe, path=path)
        assert replay.status_code == 200
        assert replay.get_json() == {
            "ok": True,
            "outcome": "already done: comment cmt-r (resubscribe)",
        }
    db.session.refresh(contact)
    assert contact.unsubscribed and audits() == before
    assert outcomes()[-2:] == ["already done: comment cmt-r (resubscribe)"] * 2
    run_jobs(missive_app)
    assert [post["text"] for post in fake.posts()] == notes  # no note for the replays


def test_the_claim_names_the_comment_and_what_it_did(hooks):
    ContactFactory(phone=PHONE)
    db.session.commit()
    post_missive(hooks, comment_payload("unsubscribe", "cmt-7"), path=ADMIN)
    claim = db.session.get(Setting, "admin-comment:cmt-7")
    assert claim.value["action"] == "unsubscribe"
    assert claim.value["staff"] == "Dana Reporter" and claim.value["conversation"] == "conv-a"


def test_the_same_comment_claimed_twice_is_claimed_once(app):
    """Two deliveries of one comment racing each other: the claim's primary key lets one through."""
    comment = AdminComment("cmt-race", "unsubscribe", "Dana", utcnow())
    assert claim_comment(comment, "conv-a", retention_days=30) is True
    assert claim_comment(comment, "conv-a", retention_days=30) is False
    assert db.session.get(Setting, "admin-comment:cmt-race") is not None


def test_claims_older_than_the_retention_are_dropped(app):
    old = AdminComment("cmt-old", "unsubscribe", "Dana", utcnow())
    claim_comment(old, "conv-a", retention_days=30)
    db.session.execute(
        sa.update(Setting)
        .where(Setting.key == "admin-comment:cmt-old")
        .values(updated_at=utcnow() - timedelta(days=31))
    )
    claim_comment(AdminComment("cmt-new", "unsubscribe", "Dana", utcnow()), "conv-a", 30)
    keys = set(db.session.scalars(sa.select(Setting.key).where(Setting.key.like("admin-%"))))
    assert keys == {"admin-comment:cmt-new"}


# -- comments older than ten minutes are refused ---------------------------------------------------
def test_a_stale_comment_is_refused_logged_and_noted_in_the_conversation(missive_app, fake):
    """Retrying cannot make a comment younger, so the refusal is a 200 (no pointless retries);
    the note tells the staff member to comment again."""
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    client = missive_app.test_client()
    stale = comment_payload("unsubscribe", "cmt-old", age=timedelta(minutes=11))
    response = post_missive(client, stale, path=f"{ADMIN}?action=unsubscribe")
    assert response.status_code == 200
    assert response.get_json() == {
        "ok": False,
        "outcome": "refused: comment cmt-old (unsubscribe) arrived 11 minutes after it was "
        "written; the limit is 10 minutes",
    }
    db.session.refresh(contact)
    assert not contact.unsubscribed and audits() == 0
    assert db.session.get(Setting, "admin-comment:cmt-old") is None
    assert outcomes() == [response.get_json()["outcome"]]
    post_missive(client, stale, path=ADMIN)  # delivered again: still refused, one note
    run_jobs(missive_app)
    assert [post["text"] for post in fake.posts()] == [
        "Broadcaster did not unsubscribe: this comment reached it 11 minutes after it was "
        "written, and admin actions count only within 10 minutes. Comment “unsubscribe” again "
        "to do it."
    ]


@pytest.mark.parametrize(
    ("age", "refused"),
    [
        (timedelta(minutes=9, seconds=50), False),
        (timedelta(seconds=0), False),
        (timedelta(minutes=-2), False),  # Missive's clock a little ahead of ours
        (timedelta(minutes=10, seconds=30), True),
        (timedelta(days=3), True),
        (timedelta(hours=-1), True),
    ],
)
def test_only_comments_written_in_the_last_ten_minutes_act(hooks, age, refused):
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    response = post_missive(hooks, comment_payload(age=age), path=ADMIN)
    assert response.status_code == 200
    db.session.refresh(contact)
    assert contact.unsubscribed is not refused
    assert response.get_json()["ok"] is not refused


def test_a_replay_of_a_done_comment_says_already_done_even_when_stale(hooks):
    ContactFactory(phone=PHONE)
    db.session.commit()
    payload = comment_payload(age=timedelta(minutes=9, seconds=59))
    assert post_missive(hooks, payload, path=ADMIN).get_json()["ok"]
    payload["comment"]["created_at"] -= 3600  # as if replayed an hour later
    replay = post_missive(hooks, payload, path=ADMIN)
    assert replay.status_code == 200 and replay.get_json()["outcome"].startswith("already done")


# -- a secret of its own -----------------------------------------------------------------------
def test_the_admin_action_can_have_its_own_secret(make_app):
    app = make_app(**HOOK_SETTINGS, MISSIVE_ADMIN_WEBHOOK_SECRET="admin-only-secret")
    client = app.test_client()
    contact = ContactFactory(phone=PHONE)
    db.session.commit()
    payload = comment_payload()
    # The rules' secret no longer signs an admin action...
    assert post_missive(client, payload, path=ADMIN).status_code == 403
    db.session.refresh(contact)
    assert not contact.unsubscribed
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0
    # ...the admin secret does, and it signs nothing else.
    body = json.dumps(payload).encode()
    signed = hook_signature(body, secret="admin-only-secret")
    assert post_missive(client, body, path=ADMIN, signature=signed).status_code == 200
    db.session.refresh(contact)
    assert contact.unsubscribed
    rules_body = json.dumps(incoming("hello")).encode()
    admin_signed = hook_signature(rules_body, secret="admin-only-secret")
    assert post_missive(client, rules_body, signature=admin_signed).status_code == 403
    assert post_missive(client, rules_body).status_code == 200
