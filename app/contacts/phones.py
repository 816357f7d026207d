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
    if region == "US":
        national = _nanp_national(text)
        if national is not None:
            return _valid_nanp(national)
    return _parse(text, region)


def _parse(text: str, region: str) -> str | None:
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, _E164)


def _nanp_national(text: str) -> str | None:
    """The 10 national digits of an unambiguous North American number (`+1 313...`, `1313...`,
    `(313) 555-1234`), else None (the general parser reads it)."""
    digits = text.translate(_PUNCTUATION)
    plus = digits.startswith("+")
    if plus:
        digits = digits[1:]
    if not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits) == 11 and digits[0] == "1":
        return digits[1:]
    if len(digits) == 10 and not plus:
        return digits
    return None


def _valid_nanp(national: str) -> str | None:
    """What phonenumbers says of +1<national>, without parsing text again: checking the US first
    skips its search through every +1 region (imports spend most of their time here)."""
    number = phonenumbers.PhoneNumber(country_code=1, national_number=int(national))
    if phonenumbers.is_valid_number_for_region(number, "US") or phonenumbers.is_valid_number(
        number
    ):
        return "+1" + national
    return None


def looks_like_phone(text: str) -> bool:
    """Digits (and phone punctuation) only, at least 7 of them: a search for a number, not a name."""
    stripped = text.strip().lstrip("+").translate(_PUNCTUATION)
    return len(stripped) >= 7 and stripped.isdigit()
