"""Campaigns pages: the index (upcoming, sending, history), one campaign's page with its results, cancel.

The editing views (new, edit, estimate, preview, delete) live in `app/campaigns/editing.py` and
register on the same blueprint (imported at the bottom of this module)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.broadcasts.display import zone_label
from app.campaigns.report import rows_not_sent, start_countdown
from app.campaigns.services import (
    current_estimate,
    history_page,
    sending_campaigns,
    target_summary,
    upcoming_campaigns,
)
from app.extensions import db
from app.htmx import hx_refresh, vary_on_htmx, wants_partial
from app.jobs.campaigns import labels_unavailable
from app.models import Campaign, Role, utcnow
from app.pagination import page_number
from app.security import require_role
from app.sends import is_started
from app.sends.stats import display_stats
from app.sends.views import (
    announce_progress,
    cancel_context,
    cancel_response,
    check_statuses_response,
    outcomes_response,
    progress_context,
    recipients_context,
    reconcile_context,
    require_sending,
)

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

HISTORY_PAGE = 10
UPCOMING_SHOWN = 50
NOT_SENT_SHOWN = 20


def _zone() -> str:
    return current_app.config["APP_TIMEZONE"]


def _page(body: str, status: int = 200) -> Response:
    return vary_on_htmx(current_app.make_response((body, status)))


def _can_edit() -> bool:
    return current_user.has_role(Role.OPERATOR)


def _history_context(page: int) -> dict[str, Any]:
    rows, following = history_page(page, HISTORY_PAGE)
    return dict(history=rows, history_next=following)


# -- the index -----------------------------------------------------------------------------------
@bp.get("/")
def index():
    context = {
        "upcoming": [(c, target_summary(c)) for c in upcoming_campaigns(UPCOMING_SHOWN)],
        "sending": [(c, display_stats(c)) for c in sending_campaigns()],
        "can_edit": _can_edit(),
        "zone_label": zone_label(_zone()),
        **_history_context(1),
    }
    return _page(render_template("campaigns/index.html", **context))


@bp.get("/history")
def history():
    """More past campaigns ("show more" appends them), from their stored figures."""
    if not wants_partial():
        return redirect(url_for("campaigns.index") + "#campaigns-history")
    context = _history_context(page_number())
    return _page(render_template("campaigns/partials/_history_rows.html", **context))


# -- one campaign --------------------------------------------------------------------------------
def _campaign(campaign_id: int) -> Campaign:
    return db.get_or_404(Campaign, campaign_id)


def _started(campaign_id: int) -> Campaign:
    campaign = _campaign(campaign_id)
    if not is_started(campaign):
        abort(404, description="This campaign has not started: its results appear once it sends.")
    return campaign


def _show(campaign: Campaign, **extra: Any) -> Response:
    context: dict[str, Any] = dict(
        campaign=campaign,
        send=campaign,
        target=target_summary(campaign),
        zone_label=zone_label(_zone()),
        can_edit=_can_edit(),
        started=is_started(campaign),
        labels_unavailable=labels_unavailable(current_app.config),
    )
    if context["started"]:
        context.update(progress_context(campaign), **recipients_context(campaign, request.args))
        context["not_sent"] = rows_not_sent(campaign, NOT_SENT_SHOWN)
        context.update(reconcile_context(campaign, can_check=_can_edit()))
    else:
        context["estimate"] = current_estimate(campaign, zone=_zone())
        context["countdown"] = start_countdown(campaign, now=utcnow())
    context.update(extra)
    return _page(render_template("campaigns/show.html", **context))


@bp.get("/<int:campaign_id>")
def show(campaign_id: int):
    """Before it starts: what it is, who it reaches now, edit/delete. Once started: its
    results (live progress, funnel, recipients, CSV), read-only."""
    return _show(_campaign(campaign_id))


@bp.get("/<int:campaign_id>/starting")
def starting(campaign_id: int):
    """The countdown of a scheduled campaign about to start, polled every 5 s from its page.
    Once it has started (or was unscheduled, edited to a later time, put back to draft), the
    page it was drawn for is out of date: htmx reloads it, showing the live progress."""
    if not wants_partial():
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    campaign = db.session.get(Campaign, campaign_id)
    countdown = start_countdown(campaign, now=utcnow()) if campaign is not None else None
    if countdown is None:
        return hx_refresh(_page(""))
    html = render_template(
        "campaigns/partials/_starting.html", campaign=campaign, countdown=countdown
    )
    return _page(html)


@bp.get("/<int:campaign_id>/progress")
def progress(campaign_id: int):
    """The live part of a campaign: polls itself every 2 s while it is sending."""
    campaign = _started(campaign_id)
    if not wants_partial():
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    html = render_template(
        "sends/partials/_progress.html",
        compact=bool(request.args.get("compact")),
        **progress_context(campaign),
    )
    return announce_progress(_page(html), campaign)


@bp.get("/<int:campaign_id>/recipients")
def recipients(campaign_id: int):
    """The per-recipient table (filter by status, search by phone, next page)."""
    campaign = _started(campaign_id)
    if not wants_partial():
        return redirect(url_for("campaigns.show", campaign_id=campaign_id, **request.args))
    html = render_template(
        "sends/partials/_recipients.html", **recipients_context(campaign, request.args)
    )
    return _page(html)


@bp.get("/<int:campaign_id>/outcomes.csv")
def outcomes(campaign_id: int):
    """Every message's outcome as CSV ("who did not get it, and why"), streamed."""
    return outcomes_response(_started(campaign_id), _zone(), request.args)


# -- cancel --------------------------------------------------------------------------------------
@bp.get("/<int:campaign_id>/cancel")
@require_role(Role.OPERATOR)
def confirm_cancel(campaign_id: int):
    """The confirmation: how many waiting messages cancelling stops."""
    campaign = require_sending(_campaign(campaign_id))
    if wants_partial():
        return _page(render_template("sends/partials/_cancel.html", **cancel_context(campaign)))
    return _show(campaign, confirm=cancel_context(campaign))


@bp.post("/<int:campaign_id>/cancel")
@require_role(Role.OPERATOR)
def cancel(campaign_id: int):
    """Stop a sending campaign: its waiting messages become cancelled ("send cancelled")."""
    campaign = require_sending(
        db.get_or_404(Campaign, campaign_id, with_for_update=True, populate_existing=True)
    )
    return cancel_response(campaign, user=current_user, ip_address=request.remote_addr)


# -- check provider statuses now -------------------------------------------------------------------
@bp.get("/<int:campaign_id>/statuses")
def statuses(campaign_id: int):
    """The status check's section: polls itself every 2 s while a check is queued or running."""
    campaign = _started(campaign_id)
    if not wants_partial():
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    context = reconcile_context(campaign, can_check=_can_edit())
    return _page(render_template("sends/partials/_reconcile.html", **context))


@bp.post("/<int:campaign_id>/statuses")
@require_role(Role.OPERATOR)
def check_statuses(campaign_id: int):
    """Queue the reconciliation of this campaign's open messages (the provider is asked in
    the job, never here)."""
    return check_statuses_response(_started(campaign_id))


from app.campaigns import editing  # noqa: E402, F401  (registers the editing views on bp)
