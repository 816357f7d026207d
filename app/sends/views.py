"""The routes' half of a send's results pages, shared by broadcasts and campaigns: the contexts
of the progress, recipients and cancel partials read from the query string, and the CSV of
outcomes as a streamed response. Route bodies stay one line each on both blueprints."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
)
from redis.exceptions import RedisError
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.htmx import hx_redirect, hx_trigger, is_htmx, vary_on_htmx, wants_partial
from app.jobs.maintenance import (
    enqueue_send_reconcile,
    last_send_reconcile,
    send_reconcile_waiting,
)
from app.models import JobOutcome, utcnow
from app.sending.reconcile import reconcile_unavailable
from app.sends import Send, is_sending, send_kind, send_label
from app.sends.control import cancel_preview, cancel_send
from app.sends.results import STATUSES, clean_filters, outcome_csv, recipients_page
from app.sends.stats import display_stats
from app.system.periodic import error_summary
from app.templating import send_url


def progress_context(send: Send) -> dict[str, Any]:
    """`send` and its figures for `sends/partials/_progress.html` (and the funnel)."""
    return dict(send=send, stats=display_stats(send) or {})


def progress_event(send: Send) -> str:
    """The event a sending send's progress poll announces (`broadcasts-12-progressed`): its
    per-recipient table listens for it and fetches itself again, filter and page kept."""
    return f"{send_kind(send)}-{send.id}-progressed"


def announce_progress(response: Response, send: Send) -> Response:
    """The progress poll's answer tells the page's table to refresh while the send is sending,
    and once more from the poll that finds it done (`?live=1`: the page drew it sending), so
    the table ends on the final statuses; a finished send's progress announces nothing."""
    if is_sending(send) or request.args.get("live"):
        hx_trigger(response, progress_event(send))
    return response


def recipients_context(send: Send, args: MultiDict[str, str]) -> dict[str, Any]:
    """The per-recipient table's context from `?status=&q=&after=` (anything is safe)."""
    status, search = clean_filters(args.get("status"), args.get("q"))
    after = args.get("after", "")[:40]
    page = recipients_page(send, status=status, search=search, after=after)
    return dict(
        send=send,
        recipients=page,
        status_filter=status,
        search=search,
        after=after,
        paged=bool(after),
        statuses=STATUSES,
        progress_event=progress_event(send),
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


def cancel_response(send: Send, *, user: Any, ip_address: str | None) -> Response:
    """The POST of a cancel, for either kind of send (the route has locked and checked the row):
    cancel, commit, say how many waiting messages stop, and go back to the send's page."""
    cancelled = cancel_send(send, user=user, ip_address=ip_address)
    db.session.commit()
    flash(
        f"{send_label(send)} cancelled: {cancelled:,} waiting "
        f"message{'' if cancelled == 1 else 's'} will not be sent.",
        "success",
    )
    target = send_url(send, "show")
    if is_htmx():
        return hx_redirect(current_app.make_response(("", 204)), target)
    return redirect(target, 303)


# -- checking provider statuses now (status reconciliation of one send) ---------------------------
QUEUE_DOWN = (
    "The job queue does not answer, so statuses cannot be checked now: nothing was queued. "
    "Try again in a minute."
)
QUEUE_UNKNOWN = (
    "The job queue does not answer: a check cannot be queued now, and one already queued may "
    "not show here. Try again in a minute."
)
# A `running` row this old whose job Redis no longer holds was killed (worker stopped, timeout).
_RUN_STALE = timedelta(hours=2)


def reconcile_context(
    send: Send, *, can_check: bool, notice: tuple[str, str] | None = None
) -> dict[str, Any]:
    """`send` and `reconcile` (what `sends/partials/_reconcile.html` shows): why statuses
    cannot be checked, whether a check is queued or running, the last check's run."""
    app = current_app._get_current_object()
    unavailable = reconcile_unavailable(app.config)
    run = last_send_reconcile(send)
    running_row = run is not None and run.outcome == JobOutcome.RUNNING
    queue_error = None
    waiting = False
    if unavailable is None:
        try:
            waiting = send_reconcile_waiting(send, app)
        except (RedisError, OSError):
            queue_error = QUEUE_UNKNOWN
    fresh_row = running_row and run.started_at > utcnow() - _RUN_STALE
    running = waiting or (queue_error is not None and fresh_row)
    return dict(
        send=send,
        reconcile=dict(
            unavailable=unavailable,
            queue_error=queue_error,
            run=run,
            # The line of its traceback naming the error (not a database error's trailing link).
            error=error_summary(run.error) if run is not None and run.error else "",
            running=running,
            # Queued, and no run row of this check yet.
            queued=waiting and not running_row,
            stopped=running_row and not running,
            can_check=can_check,
            notice=notice,
        ),
    )


def check_statuses_response(send: Send) -> Response:
    """The POST of "Check statuses now": queue the send's reconciliation (provider calls happen
    only in the job) and answer with the section saying so; 409 when this app cannot check
    (which is said), 503 when the queue does not answer. A plain form goes back to the page."""
    unavailable = reconcile_unavailable(current_app.config)
    status = 202
    if unavailable is not None:
        notice, status = ("error", f"Statuses cannot be checked: {unavailable}"), 409
    else:
        try:
            enqueue_send_reconcile(send)
        except (RedisError, OSError):
            notice, status = ("error", QUEUE_DOWN), 503
        else:
            notice = (
                "success",
                f"Checking the statuses of {send_label(send)}'s open messages at the provider: "
                "the result shows here when it is done.",
            )
    if wants_partial():
        html = render_template(
            "sends/partials/_reconcile.html",
            **reconcile_context(send, can_check=True, notice=notice),
        )
        return vary_on_htmx(current_app.make_response((html, status)))
    flash(notice[1], notice[0])
    return redirect(send_url(send, "show"), 303)
