"""Reading the page number of a list from the query string, safely."""

from __future__ import annotations

from flask import request

MAX_PAGE = 10_000


def page_number() -> int:
    """`?page=` as a number from 1 to MAX_PAGE; anything else is page 1 (never a 500)."""
    raw = request.args.get("page", "1")
    if not raw.isdigit():
        return 1
    return min(max(int(raw), 1), MAX_PAGE)
