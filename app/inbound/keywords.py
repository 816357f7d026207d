"""Keyword classification (SPEC 6.5): only a whole message that *is* a keyword counts."""

from __future__ import annotations

import unicodedata

from app.models import Keyword

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})


def _is_edge_noise(char: str) -> bool:
    # Whitespace (including no-break and zero-width spaces) and punctuation: "Stop.", " STOP! ".
    category = unicodedata.category(char)
    return char.isspace() or category.startswith("P") or category == "Cf"


def normalize_keyword_text(body: str) -> str:
    """The message as compared with the keyword lists: NFKC (full-width letters become plain),
    upper case, surrounding whitespace and punctuation removed; the inside is left alone."""
    text = unicodedata.normalize("NFKC", body or "")
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return text[start:end].upper()


def classify(body: str) -> Keyword | None:
    """STOP, START or HELP when the whole message is one of their words, else None (a reply).

    "stop by later", "Stop please" and "don't stop" are replies: a message that merely contains
    a keyword never unsubscribes anyone (the predecessor's mistake, SPEC 9).
    """
    word = normalize_keyword_text(body)
    if len(word) > 12:  # longer than any keyword: skip the set lookups
        return None
    if word in OPT_OUT:
        return Keyword.STOP
    if word in OPT_IN:
        return Keyword.START
    if word in HELP:
        return Keyword.HELP
    return None
