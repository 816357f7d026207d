"""Formula-safe CSV cells: the one rule for every CSV the app lets people download."""

from __future__ import annotations

import re
from typing import Any

# What a spreadsheet runs as a formula when a cell starts with it (after any spaces).
_FORMULA_START = re.compile(r"^[\s]*[=+\-@\t\r|]")
# A plain number stays as it is: phone numbers (+13135551234), negative numbers, decimals.
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def safe_cell(value: Any) -> str:
    """The cell's text, with a leading apostrophe when a spreadsheet would run it as a formula
    (`=1+2`, `-1+2`, `+1+2`, `@SUM(…)`, a leading tab or CR, `|cmd`). Phone numbers and plain
    numbers are left as they are, so exports stay readable."""
    text = "" if value is None else str(value)
    if _FORMULA_START.match(text) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text
