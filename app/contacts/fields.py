"""Checking the contact fields that people type or import (zip codes, emails), one set of rules
for the contact form, the segment builder and CSV imports."""

from __future__ import annotations

import re
import unicodedata

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

MAX_ZIP_LENGTH = 12
MAX_EMAIL_LENGTH = 254
_US_ZIP = re.compile(r"(\d{5})(?:[-\s]?(\d{4}))?")
_POSTCODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z -]*")
# The everyday address (letters, digits and _%+'- in dotted words before the @, an ASCII dotted
# domain with a letter TLD): accepted without the full check, which costs 30-100 µs a call
# (seconds for a 100,000-row import). Anything else gets the full check.
_PLAIN_EMAIL = re.compile(
    r"[\w%+'-]+(?:\.[\w%+'-]+)*"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))"
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


class FieldProblem(ValueError):
    """A value that cannot be stored; the message says what a good one looks like."""


def check_zip_code(value: str, region: str) -> str:
    """The zip code to store (`48201`, `48201-1234`), or FieldProblem. With a US region it must
    be 5 digits or ZIP+4; elsewhere letters, digits, spaces and hyphens (a UK postcode)."""
    text = (value or "").strip()
    if region == "US":
        match = _US_ZIP.fullmatch(text)
        if match is None:
            raise FieldProblem(f"“{text}” is not a US zip code: use 5 digits (48201) or ZIP+4.")
        return match[1] + (f"-{match[2]}" if match[2] else "")
    if len(text) > MAX_ZIP_LENGTH:
        raise FieldProblem(f"A zip code has at most {MAX_ZIP_LENGTH} characters.")
    if not _POSTCODE.fullmatch(text):
        raise FieldProblem(f"“{text}” is not a zip code: use letters, digits and spaces.")
    return text


def zip_code_ok(value: str, region: str) -> bool:
    try:
        check_zip_code(value, region)
    except FieldProblem:
        return False
    return True


def check_email(value: str) -> str:
    """The email to store (its domain in lower case), or FieldProblem saying what is wrong
    (`dwayne@example`: the part after the @ needs a period). Deliverability is not checked."""
    text = (value or "").strip()
    if len(text) > MAX_EMAIL_LENGTH:
        raise FieldProblem(f"An email has at most {MAX_EMAIL_LENGTH} characters.")
    plain = _PLAIN_EMAIL.fullmatch(text)
    if plain is not None and plain[2].lower() not in _SPECIAL_USE:
        local = text[: plain.start(1) - 1]
        if len(local) <= 64 and (local.isascii() or unicodedata.is_normalized("NFC", local)):
            return f"{local}@{plain[1].lower()}"
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise FieldProblem(f"“{text}” is not an email address: {exc}") from None
