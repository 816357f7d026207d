"""Campaigns through the API: created from segments as JSON and from files as multipart (a bad
file is a problem naming it), patched with If-Match, deleted before the start, estimated without
saving, and created once per Idempotency-Key."""

from __future__ import annotations

import io
from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, Campaign, CampaignStatus, Upload, utcnow
from tests.factories import CampaignFactory, ContactFactory, SegmentFactory

PROBLEM = "application/problem+json"


def _segment_body(segment_id: int, **fields) -> dict:
    return {
        "title": "Town hall",
        "first_message": "Town hall tonight at 7",
        "target_kind": "segments",
        "targeting": {"include": [[{"type": "segment", "segment_id": segment_id}]]},
        "run_at": (utcnow() + timedelta(hours=3)).isoformat(),
        **fields,
    }


def test_a_segments_campaign_is_created_as_json_and_read_back(operator_api):
    segment = SegmentFactory(rule={"all": []})
    ContactFactory.create_batch(2)
    db.session.commit()
    response = operator_api.post("/api/v1/campaigns", json=_segment_body(segment.id))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "scheduled" and body["estimated_recipients"] == 2
    read = operator_api.get(f"/api/v1/campaigns/{body['id']}")
    assert read.status_code == 200 and read.headers["ETag"] == response.headers["ETag"]
    listed = operator_api.get("/api/v1/campaigns?when=upcoming").get_json()
    assert [c["id"] for c in listed["items"]] == [body["id"]]


def test_a_refused_campaign_names_its_field_and_saves_nothing(operator_api):
    segment = SegmentFactory()
    db.session.commit()
    response = operator_api.post(
        "/api/v1/campaigns", json=_segment_body(segment.id, run_at="2020-01-01T10:00:00+00:00")
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "run_at"
    missing = operator_api.post(
        "/api/v1/campaigns", json=_segment_body(segment.id, targeting={"include": []})
    )
    assert missing.status_code == 422 and missing.get_json()["field"] == "targeting"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0


def test_campaign_create_with_one_idempotency_key_creates_once(operator_api):
    segment = SegmentFactory()
    db.session.commit()
    headers = {"Idempotency-Key": "cms-42"}
    body = _segment_body(segment.id)
    first = operator_api.post("/api/v1/campaigns", json=body, headers=headers)
    again = operator_api.post("/api/v1/campaigns", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 1


def _multipart(filename: str, content: bytes, **campaign) -> dict:
    import json

    fields = {"first_message": "Hello {name}", "target_kind": "personalized", **campaign}
    fields.setdefault("run_at", (utcnow() + timedelta(hours=3)).isoformat())
    return {"campaign": json.dumps(fields), "file": (io.BytesIO(content), filename)}


def test_a_personalized_campaign_is_created_from_a_multipart_file(operator_api):
    csv = b"phone,name\n+13135550101,Ada\n(313) 555-0102,Grace\nnot a number,Bad\n"
    response = operator_api.post(
        "/api/v1/campaigns",
        data=_multipart("people.csv", csv),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["target_kind"] == "personalized"
    assert body["estimated_recipients"] == 2
    assert body["upload"]["filename"] == "people.csv"
    assert body["upload"]["status"] == "done" and body["upload"]["invalid_rows"] == 1
    report = operator_api.get(f"/api/v1/uploads/{body['upload_id']}/report").get_json()
    assert report["issues"][0]["row"] == 4


def test_a_bad_file_is_a_problem_naming_the_file(operator_api):
    for filename, content in (
        ("empty.csv", b""),
        ("header-only.csv", b"phone,name\n"),
        ("binary.csv", b"\x00\x01\x02\xff\xfe" * 50),
        ("notes.pdf", b"%PDF-1.4"),
    ):
        response = operator_api.post(
            "/api/v1/campaigns",
            data=_multipart(filename, content, target_kind="uploaded_list"),
            content_type="multipart/form-data",
        )
        assert response.status_code == 422, (filename, response.get_json())
        assert response.content_type == PROBLEM
        problem = response.get_json()
        assert problem["field"] == "file", filename
        assert problem["detail"].startswith(f"{filename}: "), problem
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0


def test_a_file_without_a_valid_row_is_refused_naming_it(operator_api):
    response = operator_api.post(
        "/api/v1/campaigns",
        data=_multipart("bad.csv", b"phone\nnope\nalso nope\n", target_kind="uploaded_list"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["field"] == "file" and problem["detail"].startswith("bad.csv: ")
    assert db.session.get(Upload, problem["upload_id"]) is not None  # its report stays


def test_patching_a_campaign_needs_its_current_etag(operator_api):
    segment = SegmentFactory()
    db.session.commit()
    created = operator_api.post("/api/v1/campaigns", json=_segment_body(segment.id))
    url = f"/api/v1/campaigns/{created.get_json()['id']}"
    etag = created.headers["ETag"]
    first = operator_api.patch(url, json={"title": "Renamed"}, headers={"If-Match": etag})
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["title"] == "Renamed"
    stale = operator_api.patch(url, json={"title": "Again"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert operator_api.patch(url, json={"title": "Again"}).status_code == 428
    fresh = operator_api.patch(
        url, json={"schedule": False}, headers={"If-Match": first.headers["ETag"]}
    )
    assert fresh.status_code == 200 and fresh.get_json()["status"] == "draft"


def test_a_started_campaign_cannot_be_patched_or_deleted(operator_api):
    campaign = CampaignFactory(sending=True)
    db.session.commit()
    url = f"/api/v1/campaigns/{campaign.id}"
    etag = operator_api.get(url).headers["ETag"]
    assert (
        operator_api.patch(url, json={"title": "x"}, headers={"If-Match": etag}).status_code == 409
    )
    assert operator_api.delete(url).status_code == 409
    cancelled = operator_api.post(f"{url}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"


def test_a_draft_is_deleted_and_audited_via_the_token(operator_api):
    campaign = CampaignFactory(status=CampaignStatus.DRAFT)
    db.session.commit()
    assert operator_api.delete(f"/api/v1/campaigns/{campaign.id}").status_code == 204
    assert db.session.scalar(sa.select(Campaign.id).where(Campaign.id == campaign.id)) is None
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "campaign.delete"))
    assert entry.summary.endswith("(via API token CMS hook)")


def test_the_estimate_counts_without_saving(operator_api):
    segment = SegmentFactory(rule={"all": []})
    ContactFactory.create_batch(3)
    db.session.commit()
    target = {"targeting": {"include": [[{"type": "segment", "segment_id": segment.id}]]}}
    response = operator_api.post("/api/v1/campaigns/estimate", json=target)
    assert response.get_json() == {"recipients": 3, "error": None, "merge_issues": 0}
    nothing = operator_api.post("/api/v1/campaigns/estimate", json={"targeting": {}})
    assert nothing.get_json()["recipients"] is None
    assert "at least one segment" in nothing.get_json()["error"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
