"""Bodies the API cannot take are 4xx problems naming what to fix, never a 500 and never read
as an empty object: a NUL written as \\u0000 (PostgreSQL text cannot hold it), JSON nested past
the recursion limit, a body that is not UTF-8 JSON, JSON that is not an object."""

from __future__ import annotations

import io
import json

from app.extensions import db
from app.models import Campaign, Contact, Upload
from tests.factories import ContactFactory

PROBLEM = "application/problem+json"


def _patch(api, contact_id: int, data: str | bytes):
    return api.patch(f"/api/v1/contacts/{contact_id}", data=data, content_type="application/json")


def test_a_nul_in_a_json_string_or_key_is_refused_naming_the_field(operator_api):
    contact = ContactFactory(name="Ada")
    db.session.commit()
    for body, field in (
        ({"name": "A\u0000da"}, "name"),
        ({"attributes": {"ward": "3\u0000"}}, "attributes.ward"),
        ({"attributes": {"w\u0000": "3"}}, "attributes.w\u0000"),
    ):
        response = _patch(operator_api, contact.id, json.dumps(body))
        assert response.status_code == 400, (body, response.get_json())
        assert response.content_type == PROBLEM
        problem = response.get_json()
        assert problem["field"] == field
        assert "NUL" in problem["detail"]
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).name == "Ada"


def test_json_nested_too_deeply_is_a_400_not_a_500(operator_api):
    contact = ContactFactory()
    db.session.commit()
    response = _patch(operator_api, contact.id, "[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400
    assert response.content_type == PROBLEM
    assert "nested too deeply" in response.get_json()["detail"]


def test_a_body_that_is_not_utf8_json_or_not_an_object_is_refused(operator_api):
    contact = ContactFactory(name="Ada")
    db.session.commit()
    for data, status in ((b'{"name": "\xff\xfe"}', 400), (b"{'name': 1}", 400), (b"[]", 422)):
        response = _patch(operator_api, contact.id, data)
        assert response.status_code == status, (data, response.get_json())
        assert response.content_type == PROBLEM
        assert response.get_json()["field"] == "body"
    # An empty PATCH body still changes nothing and answers the contact.
    assert _patch(operator_api, contact.id, "").status_code == 200


def test_a_multipart_campaign_with_a_nul_or_deep_json_is_refused(operator_api):
    def post(campaign: str):
        return operator_api.post(
            "/api/v1/campaigns",
            data={
                "campaign": campaign,
                "file": (io.BytesIO(b"phone\n+13135550101\n"), "people.csv"),
            },
            content_type="multipart/form-data",
        )

    nul = post(json.dumps({"title": "T\u0000", "target_kind": "uploaded_list"}))
    assert nul.status_code == 400
    assert nul.get_json()["field"] == "campaign.title"
    deep = post('{"title":' * 5000 + "1" + "}" * 5000)
    assert deep.status_code == 422
    assert deep.get_json()["field"] == "campaign"
    assert "nested too deeply" in deep.get_json()["detail"]
    assert db.session.query(Campaign).count() == 0


def test_a_multipart_campaign_takes_one_file_and_its_campaign_field(operator_api):
    campaign = json.dumps({"title": "L", "target_kind": "uploaded_list", "first_message": "hi"})
    csv = b"phone\n+13135550101\n"

    def post(data: dict):
        return operator_api.post("/api/v1/campaigns", data=data, content_type="multipart/form-data")

    two = post(
        {
            "campaign": campaign,
            "file": [(io.BytesIO(csv), "a.csv"), (io.BytesIO(csv), "b.csv")],
        }
    )
    assert two.status_code == 422
    assert two.get_json()["field"] == "file"
    assert "a.csv" in two.get_json()["detail"] and "b.csv" in two.get_json()["detail"]
    missing = post({"file": (io.BytesIO(csv), "a.csv")})
    assert missing.status_code == 422
    assert missing.get_json()["field"] == "campaign"
    array = post({"campaign": "[]", "file": (io.BytesIO(csv), "a.csv")})
    assert array.status_code == 422
    assert array.get_json()["field"] == "campaign"
    assert db.session.query(Campaign).count() == 0
    assert db.session.query(Upload).count() == 0
