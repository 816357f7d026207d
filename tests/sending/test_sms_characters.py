"""The UCS-2 warning names the characters that force it, the invisible ones in words."""

from __future__ import annotations

import pytest

from app.sending.sms import count_sms, describe_character

HX = {"HX-Request": "true"}


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\ufe0f", "variation selector-16"),
        ("\ufe0e", "variation selector-15"),
        ("\u200d", "zero width joiner"),
        ("\u200b", "zero width space"),
        ("\u00a0", "non-breaking space"),
        ("\u202f", "narrow non-breaking space"),
        ("\u2060", "word joiner"),
        ("\ufeff", "byte order mark (zero width no-break space)"),
        ("\u00ad", "soft hyphen"),
        ("\u200e", "left-to-right mark"),
        ("\u2003", "em space"),  # no entry in the table: unicodedata's name, in lower case
        ("\u0301", "combining acute accent"),
        ("\U000e0001", "language tag"),
    ],
)
def test_invisible_characters_are_named_with_their_code(char, name):
    info = describe_character(char)
    assert info.invisible
    assert info.name == name
    assert info.code == f"U+{ord(char):04X}"


@pytest.mark.parametrize(
    ("char", "name", "code"),
    [
        ("🗳", "ballot box with ballot", "U+1F5F3"),
        ("☕", "hot beverage", "U+2615"),
        ("“", "left double quotation mark", "U+201C"),
        ("\ue000", "a private-use character", "U+E000"),
    ],
)
def test_visible_characters_keep_their_glyph_and_get_a_name_for_the_hover(char, name, code):
    info = describe_character(char)
    assert not info.invisible
    assert (info.name, info.code) == (name, code)


def test_an_unassigned_character_falls_back_to_its_code():
    info = describe_character("\u0378")  # unassigned in every Unicode version so far
    assert info.name == "an unnamed character" and info.code == "U+0378"


def test_the_ballot_box_emoji_brings_an_invisible_variation_selector():
    assert count_sms("Vote 🗳️ today").non_gsm == ("🗳", "\ufe0f")


def test_the_counter_names_the_invisible_character_instead_of_a_blank_chip(operator_client):
    response = operator_client.post(
        "/broadcasts/sms-count?field=first_message",
        data={"first_message": "Vote 🗳️ today\u00a0!"},
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<code class="char" title="ballot box with ballot (U+1F5F3)">🗳</code>' in html
    assert '<code class="char char--named">variation selector-16 (U+FE0F)</code>' in html
    assert '<code class="char char--named">non-breaking space (U+00A0)</code>' in html
    # No chip is left showing only an invisible character.
    assert '<code class="char">\ufe0f</code>' not in html and "\ufe0f</code>" not in html


def test_the_settings_reply_counter_names_them_too(admin_client):
    html = admin_client.post(
        "/settings/sms-count?field=help_reply",
        data={"help_reply": "Hi\u200dthere"},
        headers=HX,
    ).get_data(as_text=True)
    assert "zero width joiner (U+200D)" in html
