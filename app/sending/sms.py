"""Counting SMS segments: GSM-7 vs UCS-2, as carriers bill them (pacing, cost, editors' counters)."""

from __future__ import annotations

from dataclasses import dataclass

# The GSM 03.38 basic character set, and the extension table whose characters take two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153  # a concatenated part loses 7 septets to its header
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsCount:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # as a person counts them
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # the capacity of each segment at this length
    remaining: int  # units left before another segment is needed
    non_gsm: tuple[str, ...]  # the characters that forced UCS-2, for the editors' warning


def count_sms(body: str) -> SmsCount:
    """How many segments `body` takes. An empty body is 0 segments.

    GSM-7 when every character is in the basic or extension table (extension characters count
    twice); otherwise UCS-2, counted in UTF-16 code units, so an emoji outside the BMP takes two.
    """
    non_gsm = tuple(
        dict.fromkeys(ch for ch in body if ch not in GSM7_BASIC and ch not in GSM7_EXTENDED)
    )
    if not non_gsm:
        encoding, single, part = "GSM-7", GSM7_SINGLE, GSM7_PART
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in body)
    else:
        encoding, single, part = "UCS-2", UCS2_SINGLE, UCS2_PART
        units = len(body.encode("utf-16-le")) // 2
    if units == 0:
        segments, per_segment = 0, single
    elif units <= single:
        segments, per_segment = 1, single
    else:
        segments, per_segment = -(-units // part), part
    remaining = segments * per_segment - units if segments else single
    return SmsCount(encoding, len(body), units, segments, per_segment, remaining, non_gsm)


def sms_segments(body: str) -> int:
    """Segments billed for `body`; at least 1, since even an empty message is one SMS."""
    return max(1, count_sms(body).segments)
