"""HTMX request and response helpers: every HX-* header name lives here."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_partial() -> bool:
    """True for an htmx request that swaps a fragment (not a boosted page, not a history restore)."""
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def vary_on_htmx(response: Response) -> Response:
    """The same URL answers with a page or a partial: caches must key on these headers."""
    response.vary.update({"HX-Request", "HX-Boosted", "HX-History-Restore-Request"})
    return response


def hx_redirect(response: Response, url: str) -> Response:
    response.headers["HX-Redirect"] = url
    return response


def hx_refresh(response: Response) -> Response:
    """Have htmx reload the whole page (the state the page was drawn for has changed)."""
    response.headers["HX-Refresh"] = "true"
    return response


def hx_location(response: Response, url: str) -> Response:
    response.headers["HX-Location"] = url
    return response


def hx_trigger(response: Response, event: str | dict[str, Any]) -> Response:
    """Announce an event (`broadcasts-changed`) so other regions refresh themselves."""
    if isinstance(event, str):
        existing = response.headers.get("HX-Trigger")
        response.headers["HX-Trigger"] = f"{existing}, {event}" if existing else event
    else:
        response.headers["HX-Trigger"] = json.dumps(event)
    return response


def hx_retarget(response: Response, selector: str, swap: str = "innerHTML") -> Response:
    response.headers["HX-Retarget"] = selector
    response.headers["HX-Reswap"] = swap
    return response
