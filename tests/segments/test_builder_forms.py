"""The builder helps: a new condition or group starts with a picker (never an invalid condition),
an untouched one is left out with a note, and messages name the condition as a person would."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Segment
from app.segments.rules import describe_place, ordinal, validate_rule
from app.validation import ValidationError
from tests.segments.test_pages import builder_form
from tests.support import HX, by_id


def test_ordinals_and_places_read_as_words():
    assert [ordinal(n) for n in (1, 2, 3, 12, 13, 21, 22, 23, 111)] == [
        "first",
        "second",
        "third",
        "twelfth",
        "13th",
        "21st",
        "22nd",
        "23rd",
        "111th",
    ]
    assert describe_place([("condition", 1)], "zip code") == "The first condition (zip code)"
    assert (
        describe_place([("group", 2), ("condition", 1)], "zip code")
        == "The first condition (zip code) of the second group"
    )
    assert (
        describe_place([("group", 1), ("group", 3), ("condition", 2)])
        == "The second condition of the third group in the first group"
    )


def test_conditions_and_groups_are_counted_apart_as_the_builder_shows_them():
    rule = {
        "all": [
            {"type": "name", "op": "is_set"},
            {"any": [{"type": "email", "op": "is_set"}]},
            {"any": [{"type": "never_received"}, {"type": "zip_code", "op": "in", "values": []}]},
        ]
    }
    with pytest.raises(ValidationError) as caught:
        validate_rule(rule)
    assert caught.value.message == (
        "The second condition (zip code) of the second group: enter at least one zip code."
    )


def test_new_groups_and_conditions_start_with_a_condition_picker(operator_client):
    html = operator_client.post(
        "/segments/builder", data=builder_form(action="add_group", at="r"), headers=HX
    ).get_data(as_text=True)
    picker = by_id(html, "segments-node-r-2-0")
    assert "rule-condition--picker" in picker
    assert '<option value="" selected>Choose a condition…</option>' in picker
    assert 'name="r.2.0.values"' not in picker and 'name="r.2.0.op"' not in picker
    html = operator_client.post(
        "/segments/builder", data=builder_form(action="add_condition", at="r"), headers=HX
    ).get_data(as_text=True)
    assert "Choose a condition…" in by_id(html, "segments-node-r-2")
    # Choosing a type from the picker gives that condition's fields.
    form = builder_form(
        action="retype",
        at="r.2",
        node=["r", "r.0", "r.1", "r.1.0", "r.2"],
        **{"r.2.kind": "condition", "r.2.type": "replied_within_days"},
    )
    html = operator_client.post("/segments/builder", data=form, headers=HX).get_data(as_text=True)
    node = by_id(html, "segments-node-r-2")
    assert 'name="r.2.days"' in node and "Choose a condition…" not in node


def untouched_new_group(**extra):
    """builder_form plus a group added with "+ Group" and left as it came."""
    return builder_form(
        node=["r", "r.0", "r.1", "r.1.0", "r.2", "r.2.0"],
        **{"r.2.kind": "group", "r.2.mode": "any", "r.2.0.kind": "condition", "r.2.0.type": ""},
        **extra,
    )


def test_saving_with_an_untouched_new_group_drops_it_and_says_so(operator_client):
    response = operator_client.post("/segments/", data=untouched_new_group())
    assert response.status_code == 302
    segment = db.session.scalar(sa.select(Segment).where(Segment.name == "Downtown"))
    assert segment.rule == {
        "all": [
            {"type": "zip_code", "op": "in", "values": ["48201"]},
            {"any": [{"type": "name", "op": "is_set"}]},
        ]
    }
    page = operator_client.get(response.location).get_data(as_text=True)
    assert "Saved segment Downtown." in page
    assert "The second group has no condition yet: left out." in page
    assert "is not chosen yet" not in page  # one note for the group, not one per condition


def test_the_live_preview_counts_without_the_picker_and_notes_it(operator_client):
    html = operator_client.post(
        "/segments/preview", data=untouched_new_group(), headers=HX
    ).get_data(as_text=True)
    assert 'id="segments-count">' in html and "segments-problem" not in html
    assert "The second group has no condition yet: left out." in by_id(html, "segments-notes").text


def test_an_unchosen_condition_beside_others_is_left_out_with_its_own_note():
    notes: list[str] = []
    rule = {
        "all": [
            {"type": "name", "op": "is_set"},
            {"any": [{"type": "never_received"}, {"type": ""}]},
        ]
    }
    assert validate_rule(rule, notes=notes) == {
        "all": [{"type": "name", "op": "is_set"}, {"any": [{"type": "never_received"}]}]
    }
    assert notes == ["The second condition of the first group is not chosen yet: left out."]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("abc", "The first condition (zip code): “abc” is not a US zip code"),
        ("48201, 4820", "“4820” is not a US zip code: use 5 digits (48201) or ZIP+4."),
    ],
)
def test_zip_codes_typed_in_the_builder_are_checked(operator_client, values, message):
    response = operator_client.post("/segments/", data=builder_form(**{"r.0.values": values}))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Segment)) == 0
    preview = operator_client.post(
        "/segments/preview", data=builder_form(**{"r.0.values": values}), headers=HX
    ).get_data(as_text=True)
    assert message in by_id(preview, "segments-problem").text


def test_zip_plus_four_is_accepted_and_a_saved_segment_with_an_old_zip_still_runs(
    operator_client,
):
    response = operator_client.post(
        "/segments/", data=builder_form(**{"r.0.values": "48201-1234 48226"})
    )
    assert response.status_code == 302
    segment = db.session.scalar(sa.select(Segment).where(Segment.name == "Downtown"))
    assert segment.rule["all"][0]["values"] == ["48201-1234", "48226"]
    # Rules saved before zip codes were checked keep running (only typing is checked).
    assert validate_rule({"all": [{"type": "zip_code", "op": "in", "values": ["abc"]}]})


def test_the_api_grammar_still_refuses_a_condition_without_a_type():
    with pytest.raises(ValidationError, match="The first condition: unknown condition type ''"):
        validate_rule({"all": [{"type": ""}]})


def test_a_refused_rule_names_the_builder_node_at_fault():
    rule = {
        "all": [
            {"type": "name", "op": "is_set"},
            {"any": [{"type": ""}, {"type": "zip_code", "op": "in", "values": "abc"}]},
        ]
    }
    with pytest.raises(ValidationError) as caught:
        validate_rule(rule, "US", notes=[])
    # The raw index (the unchosen picker counts), as the builder's form names it.
    assert caught.value.node == "r.1.1"
    with pytest.raises(ValidationError) as caught:
        validate_rule({"all": [{"any": [{"any": [{"any": [{"any": []}]}]}]}]})
    assert caught.value.node == "r.0.0.0.0"  # the group nested too deep, not its parents


def test_a_refused_save_marks_the_condition_and_ties_the_message_to_its_fields(operator_client):
    form = builder_form(
        node=["r", "r.0", "r.1", "r.1.0", "r.2", "r.2.0", "r.2.1"],
        **{
            "r.2.kind": "group",
            "r.2.mode": "any",
            "r.2.0.kind": "condition",
            "r.2.0.type": "",
            "r.2.1.kind": "condition",
            "r.2.1.type": "zip_code",
            "r.2.1.op": "in",
            "r.2.1.values": "abc",
        },
    )
    response = operator_client.post("/segments/", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert by_id(html, "segments-rule-error").text.startswith(
        "The second condition (zip code) of the second group: “abc” is not a US zip code"
    )
    bad = by_id(html, "segments-node-r-2-1")
    assert "rule-condition--invalid" in bad
    values = re.search(r"<input[^>]*name=\"r\.2\.1\.values\"[^>]*>", bad)[0]
    assert 'aria-invalid="true"' in values and 'aria-describedby="segments-rule-error"' in values
    assert "autofocus" in values  # the field to fix takes the cursor, not the name
    assert "autofocus" not in by_id(html, "name")
    assert (
        'aria-describedby="segments-rule-error"'
        in re.search(r"<select[^>]*name=\"r\.2\.1\.op\"[^>]*>", bad)[0]
    )
    # The other conditions are not marked.
    for other in ("segments-node-r-0", "segments-node-r-1-0", "segments-node-r-2-0"):
        assert "aria-invalid" not in by_id(html, other)
