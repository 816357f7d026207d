"""The routes' half of a send's results pages, shared by broadcasts and campaigns: the contexts
of the progress, recipients and cancel partials read from the query string, and the CSV of
outcomes as a streamed response. Route bodies stay one line each on both blueprints."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, stream_with_context
from werkzeug.datastructures import MultiDict

from app.sends import Send, is_sending, send_kind, send_label
from app.sends.control import cancel_preview
from app.sends.results import STATUSES, clean_filters, outcome_csv, recipients_page
from app.sends.stats import display_stats


def progress_context(send: Send) -> dict[str, Any]:
    """`send` and its figures for `sends/partials/_progress.html` (and the funnel)."""
    return dict(send=send, stats=display_stats(send) or {})


def recipients_context(send: Send, args: MultiDict[str, str]) -> dict[str, Any]:
    """The per-recipient table's context from `?status=&q=&after=` (anything is safe)."""
    status, search = clean_filters(args.get("status"), args.get("q"))
    after = args.get("after", "")
    page = recipients_page(send, status=status, search=search, after=after[:40])
    return dict(
        send=send,
        recipients=page,
        status_filter=status,
        search=search,
        paged=bool(after),
        statuses=STATUSES,
    )


def require_sending(send: Send) -> Send:
    """A cancel needs a send that is sending: anything else is a 409 saying so. Load the send
    `with_for_update` before a cancel, so two people cancelling at once cancel it once."""
    if not is_sending(send):
        abort(409, description=f"{send_label(send)} is not sending, so there is nothing to cancel.")
    return send


def cancel_context(send: Send) -> dict[str, Any]:
    """What the cancel confirmation says: how many waiting messages it cancels."""
    return dict(send=send, **cancel_preview(send))


def outcomes_response(send: Send, zone: str, args: MultiDict[str, str]) -> Response:
    """Every message's outcome as CSV ("who did not get it, and why"), streamed."""
    status, _ = clean_filters(args.get("status"), None)
    rows = outcome_csv(send, zone, status=status)
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{send_kind(send)[:-1]}-{send.id}-outcomes.csv"'
    )
    return response
