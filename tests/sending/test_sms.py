"""SMS segment counting: GSM-7 vs UCS-2, extension characters, concatenation headers."""

from __future__ import annotations

import pytest

from app.sending.sms import GSM7_BASIC, GSM7_EXTENDED, count_sms, sms_segments


@pytest.mark.parametrize(
    ("body", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("Hello", "GSM-7", 5, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("[" * 81, "GSM-7", 162, 2),
        ("Café £5 @ 9pm", "GSM-7", 13, 1),
        ("ç" * 70, "UCS-2", 70, 1),  # lowercase ç is not GSM-7 (only Ç is)
        ("ç" * 71, "UCS-2", 71, 2),
        ("Hi 👋", "UCS-2", 5, 1),  # an emoji is two UTF-16 code units
        ("x" * 134 + "“", "UCS-2", 135, 3),  # one curly quote turns 135 chars into 3 parts
    ],
)
def test_segments_are_counted_as_carriers_bill_them(body, encoding, units, segments):
    count = count_sms(body)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_the_count_names_the_characters_that_forced_ucs2_once_each():
    count = count_sms("“Quoted” — it’s here ’")
    assert count.encoding == "UCS-2"
    assert count.non_gsm == ("“", "”", "—", "’")


def test_remaining_says_how_much_fits_before_another_segment():
    assert count_sms("a" * 150).remaining == 10
    assert count_sms("a" * 200).remaining == 306 - 200
    assert count_sms("").remaining == 160


def test_an_empty_message_still_costs_one_sms():
    assert sms_segments("") == 1
    assert sms_segments("a" * 307) == 3


def _units_one_by_one(body: str) -> tuple[str, int]:
    """The definition, character by character: what the fast path must agree with."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in body):
        return "GSM-7", sum(2 if ch in GSM7_EXTENDED else 1 for ch in body)
    return "UCS-2", sum(2 if ord(ch) > 0xFFFF else 1 for ch in body)


def test_the_count_agrees_with_the_definition_for_every_character_alone_and_in_a_text():
    astral = [chr(cp) for cp in range(0x1F300, 0x1F320)]
    for ch in [chr(cp) for cp in (*range(0xD800), *range(0xE000, 0x10000))] + astral:
        for body in (ch, "a" * 159 + ch, "€" * 79 + ch):
            count = count_sms(body)
            assert (count.encoding, count.units) == _units_one_by_one(body), repr(body)
            assert sms_segments(body) == max(1, count.segments)
