"""Contacts: the searchable list (page and partial), a contact's timeline, opt-out toggles, edits."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.contacts.phones import looks_like_phone, normalize_phone
from app.extensions import db
from app.models import (
    AuditLog,
    ContactSource,
    MessageStatus,
    MissiveConversation,
    MissiveConversationLabel,
    MissiveLabel,
    utcnow,
)
from tests.factories import ContactFactory, InboundMessageFactory, OutboundMessageFactory
from tests.support import HX, by_id


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("(313) 555-1234", "+13135551234"),
        ("313.555.1234", "+13135551234"),
        ("1 313 555 1234", "+13135551234"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("555-1234", None),
        ("phone", None),
        ("", None),
        ("+1 313 555 12345678901234567890123456789", None),
    ],
)
def test_numbers_are_normalised_to_e164(raw, e164):
    assert normalize_phone(raw) == e164


def test_searches_that_look_like_numbers():
    assert looks_like_phone("(313) 555-1234") and not looks_like_phone("Ava")


def test_list_searches_filters_and_returns_a_partial_for_htmx(viewer_client):
    ContactFactory(phone="+13135550401", name="Ava Stone")
    ContactFactory(phone="+13135550402", name="Ben", unsubscribed=True)
    ContactFactory(phone="+13135550403", name="Cleo", source=ContactSource.UPLOAD)
    db.session.commit()
    page = viewer_client.get("/contacts/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "Ava Stone" in html and "Cleo" in html
    assert "HX-Request" in page.headers["Vary"]

    def partial(query):
        response = viewer_client.get(f"/contacts/?{query}", headers=HX)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "<html" not in html
        return html

    assert "Ava Stone" in partial("q=stone") and "Ben" not in partial("q=stone")
    assert "Ava Stone" in partial("q=%28313%29+555-0401")  # any format of the number
    assert "Ben" in partial("status=unsubscribed") and "Ava" not in partial("status=unsubscribed")
    assert "Cleo" in partial("source=upload") and "Ava" not in partial("source=upload")
    assert "Ben" not in partial("status=subscribed")
    assert "No contact matches." in partial("q=nobody")
    for odd in ("status=nope", "source=x", "upload=abc", "page=-3", "q=%25_"):
        assert viewer_client.get(f"/contacts/?{odd}").status_code == 200


def test_list_shows_last_message_and_labels_and_paginates(viewer_client):
    contacts = [ContactFactory(phone=f"+131355505{i:02d}") for i in range(55)]
    label = MissiveLabel(missive_id="l1", name="Voters")
    conversation = MissiveConversation(missive_id="c1", contact=contacts[-1])
    db.session.add_all([label, conversation])
    db.session.flush()
    db.session.add(MissiveConversationLabel(conversation=conversation, label=label))
    InboundMessageFactory(contact=contacts[-1], body="hi")
    db.session.commit()
    html = viewer_client.get("/contacts/").get_data(as_text=True)
    assert "Page 1 of 2" in html and "Voters" in html and "55 contacts" in html
    row = by_id(html, f"contacts-row-{contacts[-1].id}")
    assert "Voters" in row and "never" not in row
    assert "+13135550500" in viewer_client.get("/contacts/?page=2").get_data(as_text=True)


def test_contact_page_shows_every_message_in_and_out(viewer_client):
    contact = ContactFactory(name="Ava")
    sent = OutboundMessageFactory(
        contact=contact,
        body="<b>Hello</b> Detroit",
        delivered=True,
        sent_at=utcnow() - timedelta(hours=2),
    )
    InboundMessageFactory(contact=contact, body="Thanks!")
    db.session.commit()
    html = viewer_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    timeline = by_id(html, "contacts-timeline")
    assert "&lt;b&gt;Hello&lt;/b&gt; Detroit" in timeline and "Thanks!" in timeline
    assert timeline.index("Thanks!") < timeline.index("Hello")  # newest first
    assert f"Broadcast #{sent.broadcast_id}" in timeline and "delivered" in timeline
    assert viewer_client.get("/contacts/999999").status_code == 404


def test_unsubscribe_needs_a_reason_cancels_pending_messages_and_is_audited(operator_client):
    contact = ContactFactory()
    pending = OutboundMessageFactory(contact=contact)
    db.session.commit()
    response = operator_client.post(f"/contacts/{contact.id}/unsubscribe", data={"reason": ""})
    assert response.status_code == 422 and "Say why" in response.get_data(as_text=True)
    db.session.refresh(contact)
    assert not contact.unsubscribed

    response = operator_client.post(
        f"/contacts/{contact.id}/unsubscribe",
        data={"reason": "Asked by phone"},
        follow_redirects=True,
    )
    assert "1 pending message cancelled" in response.get_data(as_text=True)
    db.session.refresh(contact)
    db.session.refresh(pending)
    assert contact.unsubscribed and contact.unsubscribe_reason == "Asked by phone"
    assert pending.status == MessageStatus.CANCELLED and pending.cancel_reason == "unsubscribed"
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "contact_unsubscribe"))
    assert entry.object_id == str(contact.id) and "Asked by phone" in entry.summary

    operator_client.post(f"/contacts/{contact.id}/resubscribe", data={"reason": "Texted START"})
    db.session.refresh(contact)
    assert not contact.unsubscribed and contact.unsubscribed_at is None


def test_exclude_and_include_again(operator_client):
    contact = ContactFactory()
    db.session.commit()
    operator_client.post(f"/contacts/{contact.id}/exclude", data={"reason": "Wrong person"})
    db.session.refresh(contact)
    assert contact.excluded and contact.exclude_reason == "manual"
    operator_client.post(f"/contacts/{contact.id}/include", data={"reason": "Right person"})
    db.session.refresh(contact)
    assert not contact.excluded
    actions = set(db.session.scalars(sa.select(AuditLog.action)))
    assert {"contact_exclude", "contact_include"} <= actions
    assert (
        operator_client.post(f"/contacts/{contact.id}/delete", data={"reason": "x"}).status_code
        == 404
    )


def test_edit_details_and_attributes(operator_client):
    contact = ContactFactory(name="Ava", attributes={"a": "1"})
    db.session.commit()
    data = {
        "name": " Ava Stone ",
        "email": "ava@example.org",
        "zip_code": "48201",
        "attributes": "neighborhood = Midtown\nlanguage: es\n",
    }
    response = operator_client.post(f"/contacts/{contact.id}", data=data)
    assert response.status_code == 302
    db.session.refresh(contact)
    assert contact.name == "Ava Stone" and contact.email == "ava@example.org"
    assert contact.attributes == {"neighborhood": "Midtown", "language": "es"}
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "contact_update"))
    assert "attributes" in entry.summary


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-email"}, "Enter an email like"),
        ({"attributes": "just words"}, "Line 1: write attributes"),
        ({"zip_code": "1" * 13}, "A zip code has at most 12 characters."),
    ],
)
def test_bad_edits_are_refused_with_422_and_nothing_changes(operator_client, data, message):
    contact = ContactFactory(name="Ava", email=None)
    db.session.commit()
    response = operator_client.post(f"/contacts/{contact.id}", data={"name": "Changed", **data})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    db.session.refresh(contact)
    assert contact.name == "Ava"


def test_viewers_cannot_change_contacts(viewer_client):
    contact = ContactFactory()
    db.session.commit()
    assert viewer_client.post(f"/contacts/{contact.id}", data={"name": "x"}).status_code == 403
    response = viewer_client.post(f"/contacts/{contact.id}/unsubscribe", data={"reason": "x"})
    assert response.status_code == 403


def test_the_fast_north_american_path_agrees_with_phonenumbers():
    import random

    import phonenumbers

    from app.contacts.phones import _parse

    rng = random.Random(5)
    samples = [
        "+1 (416) 555-0199",
        "1-800-555-0100",
        "+1 0313 555 123",
        "1234567890",
        "19999999999",
    ]
    for _ in range(2000):
        n = rng.randrange(10**9, 10**10)
        samples += [str(n), f"1{n}", f"+1{n}", f"({str(n)[:3]}) {str(n)[3:6]}-{str(n)[6:]}"]
    for raw in samples:
        assert normalize_phone(raw) == _parse(raw, "US"), raw
    assert phonenumbers.is_valid_number(phonenumbers.parse("+14165550199"))  # Canada stays valid
