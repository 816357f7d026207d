"""Broadcasts through the API: the upcoming one read and patched with If-Match, send now and
test send with Idempotency-Key, cursor pages, cancel, the schedule; the same audit trail as the
dashboard's."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    AuditLog,
    Broadcast,
    BroadcastStatus,
    MessageStatus,
    OutboundMessage,
    Setting,
)
from app.settings.services import STAFF_NUMBERS_SETTING
from tests.factories import (
    BroadcastFactory,
    ContactFactory,
    OutboundMessageFactory,
    SegmentFactory,
)


def _upcoming(**kwargs) -> Broadcast:
    segment = SegmentFactory()
    broadcast = BroadcastFactory(**kwargs)
    db.session.flush()
    from app.models import BroadcastSegment

    broadcast.segment_links.append(BroadcastSegment(segment_id=segment.id, ratio=100))
    db.session.commit()
    return broadcast


def test_reading_then_patching_the_upcoming_broadcast_with_its_etag(operator_api):
    _upcoming()
    read = operator_api.get("/api/v1/broadcasts/upcoming")
    assert read.status_code == 200
    etag = read.headers["ETag"]
    response = operator_api.patch(
        "/api/v1/broadcasts/upcoming",
        json={"first_message": "New text", "delay_minutes": 30, "batch_size": 50},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["first_message"] == "New text"
    assert body["delay_minutes"] == 30 and body["batch_size"] == 50
    assert response.headers["ETag"] != etag


def test_a_stale_etag_gets_412_and_a_missing_one_428(operator_api):
    _upcoming()
    etag = operator_api.get("/api/v1/broadcasts/upcoming").headers["ETag"]
    first = operator_api.patch(
        "/api/v1/broadcasts/upcoming", json={"first_message": "One"}, headers={"If-Match": etag}
    )
    assert first.status_code == 200
    stale = operator_api.patch(
        "/api/v1/broadcasts/upcoming", json={"first_message": "Two"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.content_type == "application/problem+json"
    assert stale.get_json()["field"] == "If-Match"
    missing = operator_api.patch("/api/v1/broadcasts/upcoming", json={"first_message": "Two"})
    assert missing.status_code == 428
    assert db.session.scalar(sa.select(Broadcast.first_message)) == "One"


def test_a_refused_field_changes_nothing_and_names_the_field(operator_api):
    _upcoming(first_message="Kept")
    etag = operator_api.get("/api/v1/broadcasts/upcoming").headers["ETag"]
    response = operator_api.patch(
        "/api/v1/broadcasts/upcoming",
        json={"first_message": "Changed", "batch_size": 10_001},
        headers={"If-Match": etag},
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "batch_size"
    assert "between 1 and 10,000" in response.get_json()["detail"]
    assert db.session.scalar(sa.select(Broadcast.first_message)) == "Kept"


def test_an_unknown_field_or_wrong_type_is_a_422_naming_it(operator_api):
    etag = operator_api.get("/api/v1/broadcasts/upcoming").headers["ETag"]
    response = operator_api.patch(
        "/api/v1/broadcasts/upcoming", json={"frist_message": "x"}, headers={"If-Match": etag}
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "frist_message"
    response = operator_api.patch(
        "/api/v1/broadcasts/upcoming", json={"batch_size": "many"}, headers={"If-Match": etag}
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "batch_size"


def test_send_now_with_an_idempotency_key_starts_once_and_replays_the_answer(operator_api):
    _upcoming()
    ContactFactory.create_batch(3)
    db.session.commit()
    headers = {"Idempotency-Key": "send-1"}
    first = operator_api.post("/api/v1/broadcasts/upcoming/send-now", headers=headers)
    assert first.status_code == 201, first.get_json()
    again = operator_api.post("/api/v1/broadcasts/upcoming/send-now", headers=headers)
    assert again.status_code == 201, again.get_json()
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    started = db.session.scalars(
        sa.select(Broadcast).where(Broadcast.status != BroadcastStatus.UPCOMING)
    ).all()
    assert len(started) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 3
    # Without the key, a second send now is refused by the cool-down, saying so.
    refused = operator_api.post("/api/v1/broadcasts/upcoming/send-now")
    assert refused.status_code == 422
    assert "2 hours" in refused.get_json()["detail"] or "hour" in refused.get_json()["detail"]


def test_one_key_for_two_different_requests_is_refused(operator_api):
    _upcoming()
    db.session.add(Setting(key=STAFF_NUMBERS_SETTING, value=["+13135550101"]))
    db.session.commit()
    assert (
        operator_api.post(
            "/api/v1/broadcasts/upcoming/test-send", headers={"Idempotency-Key": "k"}
        ).status_code
        == 202
    )
    other = operator_api.post(
        "/api/v1/broadcasts/upcoming/send-now", headers={"Idempotency-Key": "k"}
    )
    assert other.status_code == 422
    assert other.get_json()["field"] == "Idempotency-Key"


def test_test_send_without_staff_numbers_says_what_to_do(operator_api):
    _upcoming()
    response = operator_api.post("/api/v1/broadcasts/upcoming/test-send")
    assert response.status_code == 422
    assert "staff test numbers" in response.get_json()["detail"]


def test_the_list_pages_by_cursor_without_skips_or_repeats_while_rows_arrive(operator_api):
    for _ in range(5):
        BroadcastFactory(sending=True)
    db.session.commit()
    seen: list[int] = []
    page = operator_api.get("/api/v1/broadcasts?limit=2").get_json()
    seen += [b["id"] for b in page["items"]]
    for _ in range(3):  # new broadcasts start between pages
        BroadcastFactory(sending=True)
        db.session.commit()
    while page["next_cursor"]:
        page = operator_api.get(
            f"/api/v1/broadcasts?limit=2&cursor={page['next_cursor']}"
        ).get_json()
        seen += [b["id"] for b in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)


def test_cancel_a_sending_broadcast_and_a_second_cancel_is_a_409(operator_api):
    broadcast = BroadcastFactory(sending=True)
    db.session.commit()
    first = operator_api.post(f"/api/v1/broadcasts/{broadcast.id}/cancel")
    assert first.status_code == 200 and first.get_json()["status"] == "cancelled"
    second = operator_api.post(f"/api/v1/broadcasts/{broadcast.id}/cancel")
    assert second.status_code == 409
    assert "not sending" in second.get_json()["detail"]


def test_the_schedule_is_read_and_replaced(operator_api):
    body = {"monday": "09:00", "thursday": "17:30", "default_batch_size": 500}
    response = operator_api.put("/api/v1/schedule", json=body)
    assert response.status_code == 200, response.get_json()
    read = operator_api.get("/api/v1/schedule").get_json()
    assert read["monday"] == "09:00:00" and read["thursday"] == "17:30:00"
    assert read["tuesday"] is None and read["default_batch_size"] == 500
    bad = operator_api.put("/api/v1/schedule", json={**body, "monday": "09:10"})
    assert bad.status_code == 422 and bad.get_json()["field"] == "monday"


def test_an_api_edit_leaves_the_dashboards_audit_entry_saying_which_token(
    operator_api, operator_client
):
    _upcoming()
    etag = operator_api.get("/api/v1/broadcasts/upcoming").headers["ETag"]
    operator_api.patch(
        "/api/v1/broadcasts/upcoming", json={"first_message": "Via API"}, headers={"If-Match": etag}
    )
    operator_client.post("/broadcasts/upcoming/first_message", data={"first_message": "Via page"})
    entries = db.session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "broadcast.update").order_by(AuditLog.id)
    ).all()
    assert [e.summary for e in entries] == [
        "Upcoming broadcast: first message (via API token CMS hook)",
        "Upcoming broadcast: first message",
    ]
    assert entries[0].user_id == entries[1].user_id
    assert entries[0].details["via"] == "API token CMS hook"


def test_a_viewer_token_reads_but_never_changes(viewer_api):
    assert viewer_api.get("/api/v1/broadcasts/upcoming").status_code == 200
    assert viewer_api.get("/api/v1/schedule").status_code == 200
    refused = viewer_api.post("/api/v1/broadcasts/upcoming/send-now")
    assert refused.status_code == 403
    assert "operator role" in refused.get_json()["detail"]


def test_recipients_filter_by_status_and_page_without_repeats(operator_api):
    broadcast = BroadcastFactory(sending=True)
    db.session.flush()
    for index in range(5):
        OutboundMessageFactory(
            broadcast=broadcast,
            status=MessageStatus.DELIVERED if index % 2 == 0 else MessageStatus.FAILED,
        )
    db.session.commit()
    url = f"/api/v1/broadcasts/{broadcast.id}/recipients"
    delivered = operator_api.get(url, query_string={"status": "delivered"}).get_json()
    assert {r["status"] for r in delivered["items"]} == {"delivered"}
    assert len(delivered["items"]) == 3
    seen = []
    page = operator_api.get(url, query_string={"limit": 2}).get_json()
    seen += [r["message_id"] for r in page["items"]]
    OutboundMessageFactory(broadcast=broadcast)  # arrives between pages
    db.session.commit()
    while page["next_cursor"]:
        page = operator_api.get(url, query_string={"limit": 2, "cursor": page["next_cursor"]})
        page = page.get_json()
        seen += [r["message_id"] for r in page["items"]]
    assert len(seen) == len(set(seen)) == 6
    bad = operator_api.get(url, query_string={"status": "lost"})
    assert bad.status_code == 422 and bad.get_json()["field"] == "status"
