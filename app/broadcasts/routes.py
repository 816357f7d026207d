"""Broadcasts pages: the upcoming broadcast edited inline, the weekly schedule, send now and test
send, the history with its trend, and each broadcast's results with live progress."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.broadcasts.cadence import WEEKDAYS, send_now_refusal
from app.broadcasts.display import local_parts, time_choices, trend_chart, zone_label
from app.broadcasts.forms import UPCOMING_FIELDS, field_values, parse_schedule
from app.broadcasts.services import (
    active_schedule,
    ensure_upcoming,
    history_query,
    last_started,
    recipient_estimate,
    run_time,
    save_schedule,
    send_now,
    upcoming_broadcast,
    update_upcoming,
)
from app.extensions import db
from app.htmx import hx_redirect, hx_trigger, is_htmx, vary_on_htmx, wants_partial
from app.jobs import QUEUE_DEFAULT, get_queue
from app.jobs.sending import enqueue_sending
from app.models import Broadcast, BroadcastStatus, Role, ScheduleVersion, Segment, utcnow
from app.pagination import page_number
from app.security import require_role
from app.sending.sms import count_sms
from app.sends.results import STATUSES, clean_filters, outcome_csv, recipients_page
from app.sends.stats import display_stats
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
def _upcoming() -> Broadcast:
    """The upcoming broadcast; the very first visit creates an empty one (then commits)."""
    upcoming = upcoming_broadcast()
    if upcoming is not None:
        return upcoming
    try:
        upcoming = ensure_upcoming(current_app)
        db.session.commit()
    except IntegrityError:  # created at the same moment by another request
        db.session.rollback()
        upcoming = upcoming_broadcast()
        if upcoming is None:
            raise
    return upcoming


def _current_values(upcoming: Broadcast) -> dict[str, str]:
    run_date, run_time_value = local_parts(upcoming.run_at_override, _zone())
    values = {
        "first_message": upcoming.first_message or "",
        "second_message": upcoming.second_message or "",
        "delay_minutes": str(upcoming.delay_seconds // 60),
        "batch_size": str(upcoming.batch_size),
        "run_date": run_date,
        "run_time": run_time_value,
        "filler": "",
    }
    for link in upcoming.segment_links:
        values[f"ratio_{link.segment_id}"] = str(link.ratio)
        if link.is_filler:
            values["filler"] = str(link.segment_id)
    return values


def _segments() -> list[Segment]:
    return list(db.session.scalars(sa.select(Segment).order_by(Segment.name)))


def _ratio_sum(values: dict[str, str]) -> int | None:
    total = 0
    for key, value in values.items():
        if key.startswith("ratio_"):
            value = (value or "").strip() or "0"
            if not value.isdigit():
                return None
            total += int(value)
    return total


def _upcoming_context(upcoming: Broadcast, values: dict[str, str] | None = None) -> dict[str, Any]:
    values = {**_current_values(upcoming), **(values or {})}
    return dict(
        upcoming=upcoming,
        values=values,
        counts={
            "first_message": count_sms(values["first_message"]),
            "second_message": count_sms(values["second_message"]),
        },
        segments=_segments(),
        ratio_sum=_ratio_sum(values),
        time_choices=time_choices(),
        zone_label=zone_label(_zone()),
        can_edit=current_user.has_role(Role.OPERATOR),
        batch_max=current_app.config["BATCH_SIZE_MAX"],
        errors={},
        saved=None,
    )


def _next_run_context(upcoming: Broadcast) -> dict[str, Any]:
    return dict(
        upcoming=upcoming,
        run_at=run_time(upcoming),
        zone_label=zone_label(_zone()),
    )


def _schedule_context(values: dict[str, str] | None = None, errors=None, saved=False):
    schedule = active_schedule()
    current = {"default_batch_size": str(schedule.default_batch_size if schedule else 1000)}
    for day, at in (schedule.times() if schedule else {}).items():
        current[day] = at.strftime("%H:%M") if at else ""
    versions = db.session.scalars(
        sa.select(ScheduleVersion)
        .options(selectinload(ScheduleVersion.created_by))
        .order_by(ScheduleVersion.id.desc())
        .limit(SCHEDULE_VERSIONS_SHOWN)
    ).all()
    return dict(
        weekdays=WEEKDAYS,
        schedule=schedule,
        schedule_values={**current, **(values or {})},
        schedule_errors=errors or {},
        schedule_saved=saved,
        versions=versions,
        time_choices=time_choices(),
        zone_label=zone_label(_zone()),
        can_edit=current_user.has_role(Role.OPERATOR),
        batch_max=current_app.config["BATCH_SIZE_MAX"],
    )


def _history_page(page: int) -> dict[str, Any]:
    rows = db.session.scalars(
        history_query().offset((page - 1) * HISTORY_PAGE).limit(HISTORY_PAGE + 1)
    ).all()
    return dict(
        history=rows[:HISTORY_PAGE], history_next=page + 1 if len(rows) > HISTORY_PAGE else None
    )


def _date_label(broadcast: Broadcast) -> str:
    """`Nov 3` in the org zone (the chart's axis has no room for the zone's name)."""
    if broadcast.started_at is None:
        return ""
    return broadcast.started_at.astimezone(ZoneInfo(_zone())).strftime("%b %-d")


@bp.get("/")
def index():
    upcoming = _upcoming()
    sending = db.session.scalars(
        sa.select(Broadcast)
        .where(Broadcast.status == BroadcastStatus.SENDING)
        .order_by(Broadcast.started_at.desc())
    ).all()
    recent = list(reversed(db.session.scalars(history_query().limit(TREND_SIZE)).all()))
    context = {
        **_upcoming_context(upcoming),
        **_next_run_context(upcoming),
        **_schedule_context(),
        **_history_page(1),
        "sending": [(b, display_stats(b)) for b in sending],
        "trend": trend_chart(recent, _date_label),
    }
    return _page(render_template("broadcasts/index.html", **context))


@bp.get("/next-run")
def next_run():
    """The upcoming broadcast's run time, re-fetched when anything on the page changed it."""
    if not wants_partial():
        return redirect(url_for("broadcasts.index"))
    upcoming = _upcoming()
    return _page(
        render_template("broadcasts/partials/_next_run.html", **_next_run_context(upcoming))
    )


FIELD_TEMPLATES = {
    "first_message": "broadcasts/partials/_field_message.html",
    "second_message": "broadcasts/partials/_field_message.html",
    "delay": "broadcasts/partials/_field_number.html",
    "batch_size": "broadcasts/partials/_field_number.html",
    "run_at": "broadcasts/partials/_field_run_at.html",
    "segments": "broadcasts/partials/_segments_feedback.html",
}


@bp.post("/upcoming/<field>")
@require_role(Role.OPERATOR)
def update(field: str):
    """Save one field of the upcoming broadcast; the field comes back with its message."""
    if field not in UPCOMING_FIELDS:
        abort(404)
    raw = field_values(request.form)
    if field == "run_at" and raw.get("clear"):
        raw.update(run_date="", run_time="")
    upcoming = _upcoming()
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
        upcoming = _upcoming()
        submitted = {
            k: v for k, v in raw.items() if k in UPCOMING_FIELDS[field] or field == "segments"
        }
        if field == "segments":  # ratios left out of the post are blank, not their saved value
            submitted = {**{f"ratio_{s.id}": "" for s in _segments()}, **submitted}
            submitted.setdefault("filler", "")
        context = _upcoming_context(upcoming, submitted)
        context["errors"] = {field: exc.message, exc.field or field: exc.message}
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("broadcasts.index") + f"#broadcasts-field-{field}")
        html = render_template(FIELD_TEMPLATES[field], field=field, **context)
        return _page(html, 422)
    db.session.commit()
    if not is_htmx():
        flash(f"Saved: {summary}.", "success")
        return redirect(url_for("broadcasts.index") + f"#broadcasts-field-{field}")
    context = _upcoming_context(upcoming)
    context["saved"] = field
    html = render_template(FIELD_TEMPLATES[field], field=field, **context)
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
    upcoming = _upcoming()
    previous = last_started()
    refusal = error or send_now_refusal(
        now=utcnow(),
        run_at_override=upcoming.run_at_override,
        last_started_at=previous.started_at if previous else None,
    )
    if not refusal and not upcoming.first_message.strip():
        refusal = "Write the first message before sending."
    estimate = None
    if not refusal:
        try:
            estimate = recipient_estimate(upcoming)
        except ValidationError as exc:
            db.session.rollback()
            refusal = f"A segment of this broadcast does not work: {exc.message}"
    return dict(upcoming=upcoming, refusal=refusal, estimate=estimate)


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
        started = send_now(current_app, user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        context = _send_now_context(error=exc.message)
        if wants_partial():
            return _page(render_template("broadcasts/partials/_send_now.html", **context), 422)
        return _page(render_template("broadcasts/send_now.html", **context), 422)
    enqueue_sending(current_app)
    flash(
        f"Broadcast {started.id} is sending to {started.recipient_count or 0:,} recipients.",
        "success",
    )
    target = url_for("broadcasts.show", broadcast_id=started.id)
    if is_htmx():
        return hx_redirect(current_app.make_response(("", 204)), target)
    return redirect(target)


@bp.post("/test-send")
@require_role(Role.OPERATOR)
def test_send():
    """Queue the current texts to the staff numbers (a job sends them; nothing is recorded)."""
    upcoming = _upcoming()
    numbers = staff_numbers()
    if not upcoming.first_message.strip():
        raise ValidationError("Write the first message before a test send.")
    if not numbers:
        raise ValidationError(
            "There are no staff test numbers yet: an admin adds them on the Settings page."
        )
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
            times, size, user=current_user, batch_max=current_app.config["BATCH_SIZE_MAX"]
        )
    except ValidationError as exc:
        db.session.rollback()
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("broadcasts.index") + "#broadcasts-schedule")
        context = _schedule_context(values, {exc.field or "schedule": exc.message})
        return _page(render_template("broadcasts/partials/_schedule.html", **context), 422)
    db.session.commit()
    if not is_htmx():
        flash("Saved the weekly schedule.", "success")
        return redirect(url_for("broadcasts.index") + "#broadcasts-schedule")
    html = render_template("broadcasts/partials/_schedule.html", **_schedule_context(saved=True))
    return hx_trigger(_page(html), CHANGED)


# -- history and one broadcast -------------------------------------------------------------------
@bp.get("/history")
def history():
    """More past broadcasts ("show more" appends them), from their stored figures."""
    if not wants_partial():
        return redirect(url_for("broadcasts.index") + "#broadcasts-history")
    context = _history_page(page_number())
    return _page(render_template("broadcasts/partials/_history_rows.html", **context))


def _broadcast(broadcast_id: int) -> Broadcast:
    broadcast = db.get_or_404(Broadcast, broadcast_id)
    if broadcast.status == BroadcastStatus.UPCOMING:
        abort(404, description="This broadcast has not started: edit it on the Broadcasts page.")
    return broadcast


def _progress_context(broadcast: Broadcast) -> dict[str, Any]:
    return dict(send=broadcast, broadcast=broadcast, stats=display_stats(broadcast) or {})


def _recipients_context(broadcast: Broadcast) -> dict[str, Any]:
    status, search = clean_filters(request.args.get("status"), request.args.get("q"))
    after = request.args.get("after", "")
    page = recipients_page(broadcast, status=status, search=search, after=after[:40])
    return dict(
        send=broadcast,
        broadcast=broadcast,
        recipients=page,
        status_filter=status,
        search=search,
        paged=bool(after),
        statuses=STATUSES,
    )


@bp.get("/<int:broadcast_id>")
def show(broadcast_id: int):
    broadcast = _broadcast(broadcast_id)
    context = {**_progress_context(broadcast), **_recipients_context(broadcast)}
    return _page(render_template("broadcasts/show.html", **context))


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
    return _page(html)


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
    broadcast = _broadcast(broadcast_id)
    status, _ = clean_filters(request.args.get("status"), None)
    rows = outcome_csv(broadcast, _zone(), status=status)
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="broadcast-{broadcast.id}-outcomes.csv"'
    )
    return response
