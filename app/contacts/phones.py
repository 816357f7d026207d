"""Phone numbers: every number that enters the app is normalised to E.164 here, with phonenumbers."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"
_E164 = phonenumbers.PhoneNumberFormat.E164
# Characters people put in phone numbers besides digits; anything else makes it "not a number".
_PUNCTUATION = str.maketrans("", "", " .-()/\u00a0")


def normalize_phone(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """`(313) 555-1234` -> `+13135551234`; None when it is not a valid number.

    Numbers without a country code are read in `region`; `1313...` and `001...` forms work too.
    """
    if not raw:
        return None
    text = raw.strip()
    if not text or len(text) > 40:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, _E164)


def looks_like_phone(text: str) -> bool:
    """Digits (and phone punctuation) only, at least 7 of them: a search for a number, not a name."""
    stripped = text.strip().lstrip("+").translate(_PUNCTUATION)
    return len(stripped) >= 7 and stripped.isdigit()
