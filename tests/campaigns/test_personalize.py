"""Personalized templates: `{column}` fields matched case-insensitively, brace escapes, clear
refusals, rendering, and rows missing a value."""

from __future__ import annotations

import pytest

from app.campaigns.personalize import parse_template
from app.validation import ValidationError

COLUMNS = ["phone", "First Name", "place", "Polling  Place "]


def test_fields_are_found_case_insensitively_and_named_as_the_file_names_them():
    template = parse_template("Hi {first name}, vote at {PLACE}.", COLUMNS)
    assert template.fields == ("First Name", "place")
    assert template.parts == ("Hi ", ", vote at ", ".")
    assert template.has_fields
    # Spaces around and inside a name are not significant.
    assert parse_template("{ polling place }", COLUMNS).fields == ("Polling  Place ",)


def test_rendering_fills_each_field_from_the_row_trimmed():
    template = parse_template("Hi {first name}, vote at {place}. Bye {First Name}!", COLUMNS)
    row = {"First Name": "  Ava ", "place": "Main St Library"}
    assert template.render(row) == "Hi Ava, vote at Main St Library. Bye Ava!"
    assert template.missing(row) is None


def test_double_braces_are_literal_braces():
    template = parse_template("Use {{code}} or }} {{ and {place}", COLUMNS)
    assert template.fields == ("place",)
    assert template.render({"place": "here"}) == "Use {code} or } { and here"
    plain = parse_template("{{not a field}}", COLUMNS)
    assert not plain.has_fields and plain.render({}) == "{not a field}"


def test_a_text_without_fields_renders_as_itself():
    template = parse_template("The same for everyone.", COLUMNS)
    assert template.fields == () and template.render({}) == "The same for everyone."


def test_an_unknown_column_is_refused_listing_the_columns():
    with pytest.raises(ValidationError) as caught:
        parse_template("Hi {nmae}", COLUMNS)
    assert caught.value.field == "first_message"
    assert "{nmae} is not a column of the file" in caught.value.message
    assert "{First Name}" in caught.value.message and "{place}" in caught.value.message


def test_the_field_name_of_the_error_can_be_chosen():
    with pytest.raises(ValidationError) as caught:
        parse_template("{x}", COLUMNS, field="second_message")
    assert caught.value.field == "second_message"


@pytest.mark.parametrize("text", ["Hi {place", "Hi place}", "{", "}", "a {place} b {", "{{place}"])
def test_a_lone_brace_is_refused(text):
    with pytest.raises(ValidationError) as caught:
        parse_template(text, COLUMNS)
    assert caught.value.field == "first_message"
    assert "A brace without its pair" in caught.value.message


def test_an_empty_field_is_refused_as_an_unknown_column():
    with pytest.raises(ValidationError, match="is not a column"):
        parse_template("Hi {}", COLUMNS)


def test_a_row_with_an_empty_or_absent_field_is_missing_that_field():
    template = parse_template("Hi {first name} at {place}", COLUMNS)
    assert template.missing({"First Name": "Ava"}) == "place"
    assert template.missing({"First Name": "   ", "place": "x"}) == "First Name"
    assert template.missing({"First Name": None, "place": "x"}) == "First Name"
    assert template.missing({"First Name": "Ava", "place": "x"}) is None


@pytest.mark.parametrize(
    "text",
    [
        "Hi {first name}, vote at {place}. Bye {First Name}!",
        "Use {{code}} or }} {{ and {place} {{{place}}}",
        "{place}{first name}",
        "The same for everyone.",
    ],
)
def test_rendering_many_rows_by_values_reads_the_same_as_rendering_a_row(text):
    template = parse_template(text, COLUMNS)
    row = {"First Name": "  Ava {0} ", "place": "\tMain St {{Library}}\n"}
    values = [row[name] for name in template.names]
    assert template.names == tuple(dict.fromkeys(template.fields))
    assert template.render_values(values) == template.render(row)
