"""Segment pages: list, builder (full page and htmx partials), live preview, saving, deleting."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, BroadcastSegment, Segment
from tests.factories import BroadcastFactory, ContactFactory, SegmentFactory
from tests.support import HX


def builder_form(**extra):
    """The builder's fields for: all of [zip in 48201, any of [name is set]]."""
    data = {
        "name": "Downtown",
        "description": "Zip 48201",
        "node": ["r", "r.0", "r.1", "r.1.0"],
        "r.kind": "group",
        "r.mode": "all",
        "r.0.kind": "condition",
        "r.0.type": "zip_code",
        "r.0.op": "in",
        "r.0.values": "48201",
        "r.1.kind": "group",
        "r.1.mode": "any",
        "r.1.0.kind": "condition",
        "r.1.0.type": "name",
        "r.1.0.op": "is_set",
    }
    data.update(extra)
    return data


def test_list_is_a_full_page_or_the_rows_partial(viewer_client):
    SegmentFactory(name="Downtown voters", description="zip 48201")
    SegmentFactory(name="Everyone")
    db.session.commit()
    page = viewer_client.get("/segments/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "Downtown voters" in html
    assert "HX-Request" in page.headers["Vary"]
    partial = viewer_client.get("/segments/?q=downtown", headers=HX).get_data(as_text=True)
    assert "<html" not in partial and "Downtown voters" in partial and "Everyone" not in partial


def test_lazy_count_of_a_listed_segment(viewer_client):
    ContactFactory(zip_code="48201")
    segment = SegmentFactory(rule={"all": [{"type": "zip_code", "op": "in", "values": ["48201"]}]})
    db.session.commit()
    html = viewer_client.get(f"/segments/{segment.id}/count", headers=HX).get_data(as_text=True)
    assert f'id="segments-count-{segment.id}">1<' in html


def test_builder_adds_and_removes_conditions_and_groups(operator_client):
    response = operator_client.post(
        "/segments/builder", data=builder_form(action="add_condition", at="r.1"), headers=HX
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert 'name="r.1.1.type"' in html and 'value="48201"' in html
    html = operator_client.post(
        "/segments/builder", data=builder_form(action="remove", at="r.1"), headers=HX
    ).get_data(as_text=True)
    assert 'name="r.1.kind"' not in html and 'name="r.0.type"' in html
    html = operator_client.post(
        "/segments/builder", data=builder_form(action="add_group", at="r"), headers=HX
    ).get_data(as_text=True)
    assert 'name="r.2.mode"' in html and 'name="r.2.0.type"' in html


def test_changing_a_condition_type_starts_it_afresh(operator_client):
    form = builder_form(action="retype", at="r.0", **{"r.0.type": "replied_within_days"})
    html = operator_client.post("/segments/builder", data=form, headers=HX).get_data(as_text=True)
    assert 'name="r.0.days"' in html and 'name="r.0.values"' not in html


def test_preview_counts_eligible_contacts_and_shows_a_sample(operator_client):
    ContactFactory(phone="+13135550301", zip_code="48201", name="Ava")
    ContactFactory(phone="+13135550302", zip_code="48201", name="Ben", unsubscribed=True)
    ContactFactory(phone="+13135550303", zip_code="48226", name="Cleo")
    db.session.commit()
    html = operator_client.post("/segments/preview", data=builder_form(), headers=HX).get_data(
        as_text=True
    )
    assert 'id="segments-count">1<' in html and "+13135550301" in html
    assert "+13135550302" not in html


def test_preview_of_an_incomplete_rule_says_what_to_fix(operator_client):
    form = builder_form(**{"r.0.values": ""})
    response = operator_client.post("/segments/preview", data=form, headers=HX)
    assert response.status_code == 200
    assert "The first condition (zip code): enter at least one zip code." in response.get_data(
        as_text=True
    )


def test_new_segment_page_and_create(operator_client, operator):
    page = operator_client.get("/segments/new")
    assert page.status_code == 200 and 'id="segments-builder"' in page.get_data(as_text=True)
    response = operator_client.post("/segments/", data=builder_form())
    assert response.status_code == 302
    segment = db.session.scalar(sa.select(Segment).where(Segment.name == "Downtown"))
    assert segment.rule == {
        "all": [
            {"type": "zip_code", "op": "in", "values": ["48201"]},
            {"any": [{"type": "name", "op": "is_set"}]},
        ]
    }
    assert segment.created_by_id == operator.id
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "segment_create"))
    assert audit.object_id == str(segment.id)
    page = operator_client.get(f"/segments/{segment.id}").get_data(as_text=True)
    assert 'value="48201"' in page and "Downtown" in page


def test_invalid_segments_are_refused_with_422_and_nothing_saved(operator_client):
    SegmentFactory(name="Taken")
    db.session.commit()
    cases = [
        (builder_form(name=""), "Give the segment a name."),
        (builder_form(name="taken"), "Another segment already has this name."),
        (
            builder_form(**{"r.0.values": ""}),
            "The first condition (zip code): enter at least one zip code.",
        ),
        (builder_form(**{"r.1.0.type": "bogus"}), "unknown condition type"),
    ]
    for data, message in cases:
        response = operator_client.post("/segments/", data=data)
        assert response.status_code == 422, message
        assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Segment)) == 1


def test_update_and_delete(operator_client):
    segment = SegmentFactory(name="Old")
    db.session.commit()
    response = operator_client.post(f"/segments/{segment.id}", data=builder_form(name="New"))
    assert response.status_code == 302
    db.session.refresh(segment)
    assert segment.name == "New" and segment.rule["all"][0]["values"] == ["48201"]
    segment_id = segment.id
    response = operator_client.post(f"/segments/{segment_id}/delete")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Segment, segment_id) is None


def test_a_segment_used_by_a_broadcast_cannot_be_deleted(operator_client):
    segment = SegmentFactory(name="Used")
    broadcast = BroadcastFactory()
    db.session.add(BroadcastSegment(broadcast=broadcast, segment=segment, ratio=50))
    db.session.commit()
    response = operator_client.post(f"/segments/{segment.id}/delete", follow_redirects=True)
    assert "Broadcasts use this segment" in response.get_data(as_text=True)
    assert db.session.get(Segment, segment.id) is not None


def test_viewers_read_but_cannot_save(viewer_client):
    segment = SegmentFactory(name="Read me")
    db.session.commit()
    assert viewer_client.get(f"/segments/{segment.id}").status_code == 200
    assert viewer_client.post("/segments/", data=builder_form()).status_code == 403
    assert viewer_client.post(f"/segments/{segment.id}/delete").status_code == 403


def test_raw_sql_segments_are_for_admins(operator_client):
    assert operator_client.get("/segments/new?kind=sql").status_code == 403
    data = {
        "kind": "sql",
        "name": "Legacy",
        "raw_sql": "SELECT phone AS phone_number FROM contacts",
    }
    assert operator_client.post("/segments/", data=data).status_code == 403


def test_admin_saves_a_raw_sql_segment_and_bad_sql_is_shown_on_the_form(admin_client):
    assert admin_client.get("/segments/new?kind=sql").status_code == 200
    bad = {"kind": "sql", "name": "Legacy", "raw_sql": "SELECT phone FROM contacts"}
    response = admin_client.post("/segments/", data=bad)
    assert response.status_code == 422
    assert "must return a column named phone_number" in response.get_data(as_text=True)
    good = dict(bad, raw_sql="SELECT phone AS phone_number FROM contacts")
    assert admin_client.post("/segments/", data=good).status_code == 302
    segment = db.session.scalar(sa.select(Segment).where(Segment.name == "Legacy"))
    assert segment.raw_sql == good["raw_sql"]
    assert admin_client.get(f"/segments/{segment.id}").status_code == 200
