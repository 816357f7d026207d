"""The test helpers themselves: `by_id` finds one element of a page, exactly as written."""

from __future__ import annotations

import pytest

from tests.support import by_id

PAGE = """<!doctype html>
<html><body>
  <div id="outer" class="card">
    <div>nested <b>&lt;b&gt; escaped</b></div>
    <ul><li>unclosed item<li>another</ul>
    <input id="field" value="a > b">
  </div>
  <p id="after">After <br/>the card</p>
  <br id="lone"/>
</body></html>"""


def test_the_element_is_its_outer_html_as_written_with_nested_ones_of_the_same_name():
    outer = by_id(PAGE, "outer")
    assert outer.startswith('<div id="outer" class="card">') and outer.endswith("</div>")
    assert "&lt;b&gt; escaped" in outer and "After" not in outer
    assert outer.count("<div") == outer.count("</div>") == 2


def test_text_is_what_a_person_reads():
    assert by_id(PAGE, "outer").text == "nested <b> escaped unclosed item another"
    assert by_id(PAGE, "after").text == "After the card"


def test_void_and_self_closed_elements():
    assert by_id(PAGE, "field") == '<input id="field" value="a > b">'
    assert by_id(PAGE, "lone") == '<br id="lone"/>'


def test_a_missing_or_repeated_id_fails_with_its_name():
    with pytest.raises(AssertionError, match="no element with id='nope'"):
        by_id(PAGE, "nope")
    with pytest.raises(AssertionError, match="2 elements with id='twice'"):
        by_id('<p id="twice">a</p><span id="twice">b</span>', "twice")
    with pytest.raises(AssertionError, match="never closed"):
        by_id('<div id="open"><p>text', "open")
