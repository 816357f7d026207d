"""Broadcasts pages: the upcoming broadcast edited inline, the weekly schedule, send now and test
send, the history with its trend, and each broadcast's results with live progress."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.auth.routes import local_path
from app.broadcasts.cadence import WEEKDAYS
from app.broadcasts.display import time_choices, trend_chart, zone_label
from app.broadcasts.forms import field_values, parse_schedule
from app.broadcasts.services import (
    UPCOMING_FIELDS,
    active_schedule,
    current_values,
    history_page,
    ratio_sum,
    run_time,
    save_schedule,
    saved_upcoming,
    schedule_values,
    schedule_versions,
    segment_choices,
    send_now,
    send_now_preview,
    sending_broadcasts,
    test_send_check,
    trend_broadcasts,
    upcoming_broadcast,
    upcoming_or_draft,
    update_upcoming,
)
from app.extensions import db
from app.htmx import hx_redirect, hx_trigger, is_htmx, vary_on_htmx, wants_partial
from app.jobs import QUEUE_DEFAULT, get_queue
from app.jobs.sending import enqueue_sending
from app.models import Broadcast, BroadcastStatus, Role
from app.pagination import page_number
from app.security import require_role
from app.sending.quiet import quiet_warning, quiet_window, window_label
from app.sending.sms import count_sms
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
from app.settings.services import staff_numbers
from app.validation import ValidationError

bp = Blueprint("broadcasts", __name__, url_prefix="/broadcasts")

HISTORY_PAGE = 10
TREND_SIZE = 20
SCHEDULE_VERSIONS_SHOWN = 20
CHANGED = "broadcasts-changed"


def _zone() -> str:
    return current_app.config["APP_TIMEZONE"]


def _page(response_body: str, status: int = 200) -> Response:
    return vary_on_htmx(current_app.make_response((response_body, status)))


# -- the upcoming broadcast ----------------------------------------------------------------------
def upcoming_context(upcoming: Broadcast, values: dict[str, str] | None = None) -> dict[str, Any]:
    values = {**current_values(upcoming, _zone()), **(values or {})}
    return dict(
        upcoming=upcoming,
        values=values,
        counts={
            "first_message": count_sms(values["first_message"]),
            "second_message": count_sms(values["second_message"]),
        },
        segments=segment_choices(),
        ratio_sum=ratio_sum(values),
        time_choices=time_choices(),
        zone_label=zone_label(_zone()),
        can_edit=current_user.has_role(Role.OPERATOR),
        batch_max=current_app.config["BATCH_SIZE_MAX"],
        errors={},
        saved=None,
    )


def next_run_context(upcoming: Broadcast) -> dict[str, Any]:
    run_at = run_time(upcoming)
    return dict(
        upcoming=upcoming,
        run_at=run_at,
        zone_label=zone_label(_zone()),
        run_warning=quiet_warning(run_at, _zone(), quiet_window(current_app)) if run_at else None,
    )


def schedule_context(values: dict[str, str] | None = None, errors=None, saved=False):
    schedule = active_schedule()
    return dict(
        weekdays=WEEKDAYS,
        schedule=schedule,
        schedule_values={**schedule_values(schedule), **(values or {})},
        schedule_errors=errors or {},
        schedule_saved=saved,
        versions=schedule_versions(SCHEDULE_VERSIONS_SHOWN),
        quiet=window_label(window) if (window := quiet_window(current_app)) else None,
        time_choices=time_choices(),
        zone_label=zone_label(_zone()),
        can_edit=current_user.has_role(Role.OPERATOR),
        batch_max=current_app.config["BATCH_SIZE_MAX"],
    )


def _history_context(page: int) -> dict[str, Any]:
    rows, following = history_page(page, HISTORY_PAGE)
    return dict(history=rows, history_next=following)


def _date_label(broadcast: Broadcast) -> str:
    """`Nov 3` in the org zone (the chart's axis has no room for the zone's name)."""
    if broadcast.started_at is None:
        return ""
    return broadcast.started_at.astimezone(ZoneInfo(_zone())).strftime("%b %-d")


@bp.get("/")
def index():
    upcoming = upcoming_or_draft(_zone())
    context = {
        **upcoming_context(upcoming),
        **next_run_context(upcoming),
        **schedule_context(),
        **_history_context(1),
        "sending": [(b, display_stats(b)) for b in sending_broadcasts()],
        "trend": trend_chart(trend_broadcasts(TREND_SIZE), _date_label),
    }
    return _page(render_template("broadcasts/index.html", **context))


@bp.get("/next-run")
def next_run():
    """The upcoming broadcast's run time, re-fetched when anything on the page changed it."""
    if not wants_partial():
        return redirect(url_for("broadcasts.index"))
    upcoming = upcoming_or_draft(_zone())
    return _page(
        render_template("broadcasts/partials/_next_run.html", **next_run_context(upcoming))
    )


@bp.post("/upcoming/<field>")
@require_role(Role.OPERATOR)
def update(field: str):
    """Save one field of the upcoming broadcast; the field comes back with its message."""
    spec = UPCOMING_FIELDS.get(field)
    if spec is None:
        abort(404)
    raw = field_values(request.form)
    upcoming = saved_upcoming(_zone())
    try:
        summary = update_upcoming(
            upcoming,
            field,
            raw,
            user=current_user,
            batch_max=current_app.config["BATCH_SIZE_MAX"],
            zone=_zone(),
        )
    except ValidationError as exc:
        db.session.rollback()
        context = upcoming_context(saved_upcoming(_zone()), spec.posted(raw))
        context["errors"] = {field: exc.message, exc.field or field: exc.message}
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("broadcasts.index") + f"#broadcasts-field-{field}")
        return _page(render_template(spec.template, field=field, **context), 422)
    db.session.commit()
    if not is_htmx():
        flash(f"Saved: {summary}.", "success")
        return redirect(url_for("broadcasts.index") + f"#broadcasts-field-{field}")
    context = upcoming_context(upcoming)
    context["saved"] = field
    html = render_template(spec.template, field=field, **context)
    return hx_trigger(_page(html), CHANGED)


@bp.post("/sms-count")
def sms_count():
    """The live character and SMS segment counter of a message being typed."""
    field = request.args.get("field", "first_message")
    if field not in ("first_message", "second_message"):
        abort(404)
    html = render_template(
        "broadcasts/partials/_sms_count.html",
        field=field,
        count=count_sms(request.form.get(field, "").replace("\r\n", "\n").strip()),
    )
    return _page(html)


# -- send now and test send ----------------------------------------------------------------------
def _send_now_context(error: str | None = None) -> dict[str, Any]:
    upcoming = upcoming_or_draft(_zone())
    preview = send_now_preview(upcoming, zone=_zone(), window=quiet_window(current_app))
    return dict(
        upcoming=upcoming,
        # Where it goes once started (the sidebar's panel), instead of the broadcast's page.
        next_url=local_path(request.values.get("next")),
        refusal=error or preview.refusal,
        estimate=preview.estimate,
        warning=preview.warning,
    )


@bp.get("/send-now")
@require_role(Role.OPERATOR)
def confirm_send_now():
    """The confirmation: how many people it would reach now, or why it cannot go now."""
    context = _send_now_context()
    if wants_partial():
        return _page(render_template("broadcasts/partials/_send_now.html", **context))
    return _page(render_template("broadcasts/send_now.html", **context))


@bp.post("/send-now")
@require_role(Role.OPERATOR)
def create_send_now():
    try:
        started = send_now(user=current_user, zone=_zone())
    except ValidationError as exc:
        db.session.rollback()
        context = _send_now_context(error=exc.message)
        if wants_partial():
            return _page(render_template("broadcasts/partials/_send_now.html", **context), 422)
        return _page(render_template("broadcasts/send_now.html", **context), 422)
    enqueue_sending(current_app)
    held = quiet_warning(started.started_at, _zone(), quiet_window(current_app))
    flash(
        f"Broadcast {started.id} is sending to {started.recipient_count or 0:,} recipients."
        + (f" {held}" if held else ""),
        "success",
    )
    target = local_path(request.form.get("next")) or url_for(
        "broadcasts.show", broadcast_id=started.id
    )
    if is_htmx():
        return hx_redirect(current_app.make_response(("", 204)), target)
    return redirect(target)


@bp.post("/test-send")
@require_role(Role.OPERATOR)
def test_send():
    """Queue the current texts to the staff numbers (a job sends them; nothing is recorded)."""
    upcoming = upcoming_broadcast()
    numbers = staff_numbers()
    refusal = test_send_check(upcoming, numbers)
    if refusal:
        raise ValidationError(refusal)
    get_queue(current_app, QUEUE_DEFAULT).enqueue(
        "app.jobs.broadcasts.test_send_broadcast", upcoming.id, current_user.id, result_ttl=3600
    )
    count = len(numbers)
    message = f"Test send queued to {count} staff number{'' if count == 1 else 's'}."
    if is_htmx():
        return _page(render_template("partials/_flash.html", messages=[("success", message)]))
    flash(message, "success")
    return redirect(url_for("broadcasts.index"))


# -- the weekly schedule -------------------------------------------------------------------------
@bp.post("/schedule")
@require_role(Role.OPERATOR)
def update_schedule():
    values = field_values(request.form)
    try:
        times, size = parse_schedule(values)
        save_schedule(
            times,
            size,
            user=current_user,
            batch_max=current_app.config["BATCH_SIZE_MAX"],
            zone=_zone(),
            window=quiet_window(current_app),
        )
    except ValidationError as exc:
        db.session.rollback()
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("broadcasts.index") + "#broadcasts-schedule")
        context = schedule_context(values, {exc.field or "schedule": exc.message})
        return _page(render_template("broadcasts/partials/_schedule.html", **context), 422)
    db.session.commit()
    if not is_htmx():
        flash("Saved the weekly schedule.", "success")
        return redirect(url_for("broadcasts.index") + "#broadcasts-schedule")
    html = render_template("broadcasts/partials/_schedule.html", **schedule_context(saved=True))
    return hx_trigger(_page(html), CHANGED)


# -- history and one broadcast -------------------------------------------------------------------
@bp.get("/history")
def history():
    """More past broadcasts ("show more" appends them), from their stored figures."""
    if not wants_partial():
        return redirect(url_for("broadcasts.index") + "#broadcasts-history")
    context = _history_context(page_number())
    return _page(render_template("broadcasts/partials/_history_rows.html", **context))


def _broadcast(broadcast_id: int) -> Broadcast:
    broadcast = db.get_or_404(Broadcast, broadcast_id)
    if broadcast.status == BroadcastStatus.UPCOMING:
        abort(404, description="This broadcast has not started: edit it on the Broadcasts page.")
    return broadcast


def _progress_context(broadcast: Broadcast) -> dict[str, Any]:
    return {**progress_context(broadcast), "broadcast": broadcast}


def _recipients_context(broadcast: Broadcast) -> dict[str, Any]:
    return {**recipients_context(broadcast, request.args), "broadcast": broadcast}


def _show(broadcast: Broadcast, **extra: Any) -> Response:
    context = {
        **_progress_context(broadcast),
        **_recipients_context(broadcast),
        "can_cancel": current_user.has_role(Role.OPERATOR),
        **reconcile_context(broadcast, can_check=current_user.has_role(Role.OPERATOR)),
        **extra,
    }
    return _page(render_template("broadcasts/show.html", **context))


@bp.get("/<int:broadcast_id>")
def show(broadcast_id: int):
    return _show(_broadcast(broadcast_id))


@bp.get("/<int:broadcast_id>/progress")
def progress(broadcast_id: int):
    """The live part of a broadcast: polls itself every 2 s while it is sending."""
    broadcast = _broadcast(broadcast_id)
    if not wants_partial():
        return redirect(url_for("broadcasts.show", broadcast_id=broadcast_id))
    html = render_template(
        "sends/partials/_progress.html",
        compact=bool(request.args.get("compact")),
        **_progress_context(broadcast),
    )
    return announce_progress(_page(html), broadcast)


@bp.get("/<int:broadcast_id>/recipients")
def recipients(broadcast_id: int):
    """The per-recipient table (filter by status, search by phone, next page)."""
    broadcast = _broadcast(broadcast_id)
    if not wants_partial():
        return redirect(url_for("broadcasts.show", broadcast_id=broadcast_id, **request.args))
    html = render_template("sends/partials/_recipients.html", **_recipients_context(broadcast))
    return _page(html)


@bp.get("/<int:broadcast_id>/outcomes.csv")
def outcomes(broadcast_id: int):
    """Every message's outcome as CSV ("who did not get it, and why"), streamed."""
    return outcomes_response(_broadcast(broadcast_id), _zone(), request.args)


# -- cancel a sending broadcast --------------------------------------------------------------------
@bp.get("/<int:broadcast_id>/cancel")
@require_role(Role.OPERATOR)
def confirm_cancel(broadcast_id: int):
    """The confirmation: how many waiting messages cancelling stops."""
    broadcast = require_sending(_broadcast(broadcast_id))
    if wants_partial():
        return _page(render_template("sends/partials/_cancel.html", **cancel_context(broadcast)))
    return _show(broadcast, confirm=cancel_context(broadcast))


@bp.post("/<int:broadcast_id>/cancel")
@require_role(Role.OPERATOR)
def cancel(broadcast_id: int):
    """Stop a sending broadcast: its waiting messages become cancelled ("send cancelled")."""
    broadcast = require_sending(
        db.get_or_404(Broadcast, broadcast_id, with_for_update=True, populate_existing=True)
    )
    return cancel_response(broadcast, user=current_user, ip_address=request.remote_addr)


# -- check provider statuses now -------------------------------------------------------------------
@bp.get("/<int:broadcast_id>/statuses")
def statuses(broadcast_id: int):
    """The status check's section: polls itself every 2 s while a check is queued or running."""
    broadcast = _broadcast(broadcast_id)
    if not wants_partial():
        return redirect(url_for("broadcasts.show", broadcast_id=broadcast_id))
    context = reconcile_context(broadcast, can_check=current_user.has_role(Role.OPERATOR))
    return _page(render_template("sends/partials/_reconcile.html", **context))


@bp.post("/<int:broadcast_id>/statuses")
@require_role(Role.OPERATOR)
def check_statuses(broadcast_id: int):
    """Queue the reconciliation of this broadcast's open messages (the provider is asked in
    the job, never here)."""
    return check_statuses_response(_broadcast(broadcast_id))
