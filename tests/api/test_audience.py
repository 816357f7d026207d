"""Segments, contacts, messages and uploads through the API: the dashboard's rules and audit."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, MessageStatus
from tests.factories import (
    BroadcastFactory,
    ContactFactory,
    OutboundMessageFactory,
    SegmentFactory,
    UploadFactory,
)


def test_a_contact_is_found_by_phone_written_any_way(operator_api):
    contact = ContactFactory(phone="+13135550123")
    db.session.commit()
    for written in ("(313) 555-0123", "313.555.0123", "+1 313 555 0123", "3135550123"):
        response = operator_api.get("/api/v1/contacts", query_string={"phone": written})
        assert response.status_code == 200, written
        assert response.get_json()["id"] == contact.id
    missing = operator_api.get("/api/v1/contacts", query_string={"phone": "313 555 0199"})
    assert missing.status_code == 404
    bad = operator_api.get("/api/v1/contacts", query_string={"phone": "hello"})
    assert bad.status_code == 422 and bad.get_json()["field"] == "phone"


def test_patching_a_contact_keeps_the_fields_not_given_and_checks_the_email(operator_api):
    contact = ContactFactory(name="Ada", email="ada@example.org", zip_code="48201")
    db.session.commit()
    url = f"/api/v1/contacts/{contact.id}"
    response = operator_api.patch(url, json={"attributes": {"ward": "3"}})
    assert response.status_code == 200
    body = response.get_json()
    assert body["attributes"] == {"ward": "3"} and body["email"] == "ada@example.org"
    bad = operator_api.patch(url, json={"email": "not an email"})
    assert bad.status_code == 422 and bad.get_json()["field"] == "email"


def test_unsubscribe_cancels_pending_messages_and_is_audited_via_the_token(operator_api):
    contact = ContactFactory()
    broadcast = BroadcastFactory(sending=True)
    db.session.flush()
    OutboundMessageFactory(broadcast=broadcast, contact=contact, status=MessageStatus.QUEUED)
    db.session.commit()
    url = f"/api/v1/contacts/{contact.id}"
    refused = operator_api.post(f"{url}/unsubscribe", json={"reason": ""})
    assert refused.status_code == 422 and refused.get_json()["field"] == "reason"
    done = operator_api.post(f"{url}/unsubscribe", json={"reason": "asked by phone"})
    assert done.status_code == 200
    assert done.get_json()["cancelled_messages"] == 1
    assert done.get_json()["contact"]["unsubscribed"] is True
    back = operator_api.post(f"{url}/resubscribe", json={"reason": "asked again"})
    assert back.get_json()["contact"]["unsubscribed"] is False
    summaries = list(
        db.session.scalars(
            sa.select(AuditLog.summary)
            .where(AuditLog.action.in_(("contact_unsubscribe", "contact_resubscribe")))
            .order_by(AuditLog.id)
        )
    )
    assert len(summaries) == 2
    assert all(s.endswith("(via API token CMS hook)") for s in summaries)
    timeline = operator_api.get(f"{url}/timeline").get_json()
    assert timeline["items"][0]["direction"] == "out"


def test_a_message_is_found_by_our_id_or_the_provider_sid(operator_api):
    contact = ContactFactory()
    broadcast = BroadcastFactory(sending=True)
    db.session.flush()
    message = OutboundMessageFactory(
        broadcast=broadcast, contact=contact, status=MessageStatus.SENT, provider_sid="SM123abc"
    )
    db.session.commit()
    by_id = operator_api.get(f"/api/v1/messages/{message.id}").get_json()
    by_sid = operator_api.get("/api/v1/messages/SM123abc").get_json()
    assert by_id == by_sid and by_id["phone"] == contact.phone and by_id["status"] == "sent"
    assert operator_api.get("/api/v1/messages/SMnope").status_code == 404


def test_segments_are_listed_and_counted_with_eligibility(operator_api):
    segment = SegmentFactory(rule={"all": []})
    ContactFactory.create_batch(2)
    ContactFactory(unsubscribed=True)
    db.session.commit()
    listed = operator_api.get("/api/v1/segments").get_json()
    assert [s["id"] for s in listed["items"]] == [segment.id]
    count = operator_api.get(f"/api/v1/segments/{segment.id}/count").get_json()
    assert count == {"id": segment.id, "eligible_contacts": 2, "purpose": "campaign"}


def test_an_upload_reports_its_status_and_rows(operator_api):
    upload = UploadFactory(done=True)
    db.session.commit()
    status = operator_api.get(f"/api/v1/uploads/{upload.id}")
    assert status.status_code == 200 and status.get_json()["status"] == "done"
    report = operator_api.get(f"/api/v1/uploads/{upload.id}/report").get_json()
    assert report["upload"]["id"] == upload.id and report["page"] == 1


def test_a_body_over_the_limit_is_a_413_problem(app, operator_api):
    etag = operator_api.get("/api/v1/broadcasts/upcoming").headers["ETag"]
    huge = {"first_message": "x" * (app.config["MAX_BODY_KB"] * 1024 + 10)}
    response = operator_api.patch(
        "/api/v1/broadcasts/upcoming", json=huge, headers={"If-Match": etag}
    )
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert "too large" in response.get_json()["detail"]
