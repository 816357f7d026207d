"""One formula-safe CSV cell rule for every download."""

from __future__ import annotations

import pytest

from app.exports import safe_cell


@pytest.mark.parametrize(
    "text",
    [
        "=1+2",
        '=HYPERLINK("http://evil")',
        "-1+2",
        "+1+2",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        " =1+2",
        "|cmd",
        "-",
        "+",
        "=",
        "-2-3",
        "+1313 555 0101",
    ],
)
def test_what_a_spreadsheet_would_run_gets_an_apostrophe(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "text", ["+13135550101", "-12", "12.5", "-0.5", "hello", "a=b", "", "48201", "Name"]
)
def test_phone_numbers_plain_numbers_and_text_stay_as_they_are(text):
    assert safe_cell(text) == text


def test_none_is_an_empty_cell():
    assert safe_cell(None) == ""
