"""Counting SMS segments: GSM-7 vs UCS-2, as carriers bill them (pacing, cost, editors' counters)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The GSM 03.38 basic character set, and the extension table whose characters take two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153  # a concatenated part loses 7 septets to its header
UCS2_SINGLE, UCS2_PART = 70, 67
_GSM7_ANY = GSM7_BASIC | GSM7_EXTENDED
# One scan finds the first character outside the basic table; most texts have none.
_NOT_BASIC = re.compile("[^" + re.escape("".join(sorted(GSM7_BASIC))) + "]")


@dataclass(frozen=True)
class SmsCount:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # as a person counts them
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # the capacity of each segment at this length
    remaining: int  # units left before another segment is needed
    non_gsm: tuple[str, ...]  # the characters that forced UCS-2, for the editors' warning


def _encoding_units(body: str) -> tuple[str, int]:
    """The encoding and its units, exactly: GSM-7 septets (extension characters count twice) or
    UTF-16 code units. A text wholly in the basic table (the usual one) costs one regex scan."""
    if _NOT_BASIC.search(body) is None:
        return "GSM-7", len(body)
    chars = set(body)
    if chars <= _GSM7_ANY:
        return "GSM-7", len(body) + sum(body.count(ch) for ch in chars & GSM7_EXTENDED)
    return "UCS-2", len(body.encode("utf-16-le")) // 2


def _parts(encoding: str, units: int) -> tuple[int, int]:
    """Segments for `units` and the capacity of each at that length."""
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    if units == 0:
        return 0, single
    if units <= single:
        return 1, single
    return -(-units // part), part


def count_sms(body: str) -> SmsCount:
    """How many segments `body` takes. An empty body is 0 segments.

    GSM-7 when every character is in the basic or extension table (extension characters count
    twice); otherwise UCS-2, counted in UTF-16 code units, so an emoji outside the BMP takes two.
    """
    encoding, units = _encoding_units(body)
    non_gsm = (
        tuple(dict.fromkeys(ch for ch in body if ch not in _GSM7_ANY))
        if encoding == "UCS-2"
        else ()
    )
    segments, per_segment = _parts(encoding, units)
    remaining = segments * per_segment - units if segments else per_segment
    return SmsCount(encoding, len(body), units, segments, per_segment, remaining, non_gsm)


def sms_segments(body: str) -> int:
    """Segments billed for `body`; at least 1, since even an empty message is one SMS."""
    return max(1, _parts(*_encoding_units(body))[0])


# Characters that show nothing (or only blank space) on their own, named as people know them;
# unicodedata's names are shouty ("NO-BREAK SPACE") or missing for some.
_INVISIBLE_NAMES = {
    "\u00a0": "non-breaking space",
    "\u00ad": "soft hyphen",
    "\u034f": "combining grapheme joiner",
    "\u061c": "Arabic letter mark",
    "\u180e": "Mongolian vowel separator",
    "\u200b": "zero width space",
    "\u200c": "zero width non-joiner",
    "\u200d": "zero width joiner",
    "\u200e": "left-to-right mark",
    "\u200f": "right-to-left mark",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
    "\u202f": "narrow non-breaking space",
    "\u2060": "word joiner",
    "\u3000": "ideographic (wide) space",
    "\ufeff": "byte order mark (zero width no-break space)",
    "\t": "tab",
}


@dataclass(frozen=True)
class CharacterInfo:
    char: str
    code: str  # "U+FE0F"
    name: str  # "variation selector-16"
    invisible: bool  # shows nothing by itself: the warning names it instead of showing it


def describe_character(char: str) -> CharacterInfo:
    """A character of a text in words, for the UCS-2 warning: `variation selector-16 (U+FE0F)`
    rather than a blank chip. Invisible means a format, control, combining or separator
    character (the spaces, joiners, marks and selectors a copied emoji or a word processor
    brings along)."""
    code = f"U+{ord(char):04X}"
    category = unicodedata.category(char)
    invisible = char in _INVISIBLE_NAMES or category in {"Cf", "Cc", "Mn", "Me", "Zs", "Zl", "Zp"}
    name = _INVISIBLE_NAMES.get(char)
    if name is None:
        name = unicodedata.name(char, "").lower() or (
            "a private-use character" if category == "Co" else "an unnamed character"
        )
    return CharacterInfo(char, code, name, invisible)
