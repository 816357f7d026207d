"""A reply that reads like an opt-out is stored as a reply, its follow-up cancelled at once, and
listed under Needs attention on the System page and the overview, where a person unsubscribes
or keeps its sender (audited, decided once). Nobody is unsubscribed on a guess."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.inbound.services import InboundSMS, possible_opt_out_count, record_inbound
from app.models import POSSIBLE_OPT_OUT, AuditLog, Contact, InboundMessage, MessageStatus, utcnow
from tests.factories import ContactFactory, sent_with_follow_up
from tests.support import HX, by_id


def receive(phone: str, body: str, sid: str):
    result = record_inbound(InboundSMS("twilio", sid, phone, body), reply_window_hours=36)
    db.session.commit()
    return result


@pytest.fixture
def waiting():
    """Someone who answered a broadcast with "please stop texting me"."""
    contact = ContactFactory()
    first, follow_up = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    result = receive(contact.phone, "Please stop texting me", "SMpo1")
    return contact, follow_up, result


def test_it_is_a_reply_that_cancels_the_follow_up_and_waits_for_a_person(waiting):
    contact, follow_up, result = waiting
    assert result.keyword is None and result.possible_opt_out and result.cancelled == 1
    db.session.expire_all()
    assert not db.session.get(Contact, contact.id).unsubscribed
    assert db.session.get(type(follow_up), follow_up.id).status == MessageStatus.CANCELLED
    inbound = db.session.get(InboundMessage, result.inbound_id)
    assert inbound.review == POSSIBLE_OPT_OUT and inbound.review_outcome is None
    assert possible_opt_out_count() == 1


def test_a_near_miss_is_not_listed():
    contact = ContactFactory()
    db.session.commit()
    result = receive(contact.phone, "I'll stop by the office later", "SMpo2")
    assert not result.possible_opt_out and possible_opt_out_count() == 0


def test_the_system_page_and_the_overview_list_it(viewer_client, waiting):
    contact, _, result = waiting
    page = viewer_client.get("/system/").get_data(as_text=True)
    item = by_id(page, f"opt-out-{result.inbound_id}")
    assert "Please stop texting me" in item and contact.phone in item
    assert "Unsubscribe" not in item  # a viewer sees it, an operator decides
    overview = viewer_client.get("/").get_data(as_text=True)
    assert "Please stop texting me" in by_id(overview, "dashboard-opt-outs")
    partial = viewer_client.get("/system/possible-opt-outs", headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.get_data(as_text=True)


def test_an_operator_unsubscribes_it_once_and_it_is_audited(operator_client, waiting):
    contact, _, result = waiting
    path = f"/system/possible-opt-outs/{result.inbound_id}"
    response = operator_client.post(path, data={"decision": "unsubscribe"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="opt-out-{result.inbound_id}"' not in html and "No reply waits" in html
    assert "is unsubscribed" in html  # the flash, out of band
    db.session.expire_all()
    person = db.session.get(Contact, contact.id)
    assert person.unsubscribed and "confirmed as an opt-out" in person.unsubscribe_reason
    entry = db.session.scalar(
        sa.select(AuditLog).where(AuditLog.action == "inbound.possible_opt_out")
    )
    assert "unsubscribed as an opt-out" in entry.summary
    again = operator_client.post(path, data={"decision": "keep"}, headers=HX)
    assert again.status_code == 422 and "already decided" in again.get_data(as_text=True)
    assert possible_opt_out_count() == 0


def test_keep_leaves_them_subscribed_and_from_the_overview_comes_back_to_it(
    operator_client, waiting
):
    contact, _, result = waiting
    response = operator_client.post(
        f"/system/possible-opt-outs/{result.inbound_id}",
        data={"decision": "keep", "where": "dashboard"},
    )
    assert response.status_code == 302 and response.location.endswith("/#dashboard-opt-outs")
    db.session.expire_all()
    assert not db.session.get(Contact, contact.id).unsubscribed
    assert db.session.get(InboundMessage, result.inbound_id).review_outcome == "kept"


def test_a_viewer_cannot_decide(viewer_client, waiting):
    _, _, result = waiting
    path = f"/system/possible-opt-outs/{result.inbound_id}"
    assert viewer_client.post(path, data={"decision": "unsubscribe"}).status_code == 403
    assert possible_opt_out_count() == 1


def test_a_bad_decision_or_an_unknown_reply_is_a_422(operator_client, waiting):
    _, _, result = waiting
    path = f"/system/possible-opt-outs/{result.inbound_id}"
    assert operator_client.post(path, data={"decision": "maybe"}, headers=HX).status_code == 422
    unknown = operator_client.post(
        "/system/possible-opt-outs/999999", data={"decision": "keep"}, headers=HX
    )
    assert unknown.status_code == 422
    assert possible_opt_out_count() == 1
