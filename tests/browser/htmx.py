"""Waiting for htmx as a person would: act on what the page shows once htmx has put it there.

htmx binds an element's triggers while it swaps it in, and marks the page while a request, a swap
or a settle is under way. A test that acts on an element the moment it appears can act before its
trigger is bound (a select changed then sends nothing) or on an element about to be replaced.
"""

from __future__ import annotations

from typing import Any

BUSY = ".htmx-request, .htmx-swapping, .htmx-settling"


def wait_for_htmx(page_or_frame: Any) -> None:
    """Until no htmx request, swap or settle is under way (a Page or a Frame)."""
    page_or_frame.wait_for_function(f"() => !document.querySelector('{BUSY}')")
