"""The System page and /healthz."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.audit.services import record_audit
from app.extensions import db
from app.htmx import hx_trigger, is_htmx, vary_on_htmx, wants_partial
from app.inbound.services import possible_opt_out_count, resolve_possible_opt_out
from app.jobs.sending import enqueue_sending
from app.models import Role, utcnow
from app.pagination import page_number
from app.security import public, require_role
from app.sending.attention import (
    messages_by_status,
    needs_attention_count,
    needs_attention_query,
    resolve_attention,
)
from app.system.periodic import (
    RunRefused,
    count_notes,
    counts_in_words,
    duration_in_words,
    error_summary,
    job_by_id,
    periodic_job_status,
    periodic_job_statuses,
    progress_of,
    queued_message,
    run_now,
)
from app.system.services import (
    OPT_OUT_LISTS,
    health_report,
    job_runs_query,
    possible_opt_outs_context,
    queue_statuses,
    worker_statuses,
)
from app.templating import localtime, org_zone, phone
from app.validation import ValidationError

bp = Blueprint("system", __name__, url_prefix="/system")
health_bp = Blueprint("health", __name__)


@bp.context_processor
def periodic_words() -> dict:
    return dict(
        counts_in_words=counts_in_words,
        count_notes=count_notes,
        duration_in_words=duration_in_words,
        error_summary=error_summary,
        progress_of=progress_of,
    )


@health_bp.get("/healthz")
@public
def healthz():
    report = health_report(current_app)
    response = jsonify(report)
    response.status_code = 200 if report["status"] == "ok" else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index():
    runs = db.paginate(job_runs_query(), page=page_number(), per_page=20, error_out=False)
    context = dict(
        by_status=messages_by_status(utcnow() - timedelta(days=7)),
        attention=_attention_page(),
        attention_total=needs_attention_count(current_app.config["STALE_CLAIM_SECONDS"]),
        opt_outs_total=possible_opt_out_count(),
        **possible_opt_outs_context("system"),
        health=health_report(current_app),
        queues=queue_statuses(current_app),
        workers=worker_statuses(current_app),
        periodic=periodic_job_statuses(current_app, utcnow(), org_zone()),
        runs=runs,
    )
    if wants_partial() and request.args.get("page"):
        return vary_on_htmx(
            current_app.make_response(render_template("system/partials/_job_runs.html", runs=runs))
        )
    return vary_on_htmx(current_app.make_response(render_template("system/index.html", **context)))


def _attention_page(page: int = 1):
    return db.paginate(
        needs_attention_query(current_app.config["STALE_CLAIM_SECONDS"]),
        page=page,
        per_page=20,
        error_out=False,
    )


@bp.get("/attention")
def attention():
    """The Needs attention list: its own partial (htmx "more"), or the System page."""
    if not wants_partial():
        return redirect(url_for("system.index") + "#system-attention")
    page = _attention_page(page_number())
    return vary_on_htmx(
        current_app.make_response(
            render_template("system/partials/_attention.html", attention=page)
        )
    )


@bp.post("/attention/<int:message_id>")
@require_role(Role.OPERATOR)
def resolve(message_id: int):
    outcome = request.form.get("outcome", "")
    if outcome not in {"sent", "resend"}:
        raise ValidationError("Choose whether the message was sent or should be sent again.")
    message = resolve_attention(message_id, was_sent=outcome == "sent", user=current_user)
    db.session.commit()
    if outcome == "resend":
        enqueue_sending(current_app)
        flash(f"Message {message.id} is queued to be sent again.", "success")
    else:
        flash(f"Message {message.id} is marked as sent.", "success")
    if is_htmx():
        return render_template(
            "system/partials/_attention.html", attention=_attention_page()
        ) + render_template("partials/_flash_oob.html")
    return redirect(url_for("system.index") + "#system-attention")


@bp.get("/possible-opt-outs")
def possible_opt_outs():
    """Replies that read like an opt-out: their own partial (htmx "more"), or the System page."""
    if not wants_partial():
        return redirect(url_for("system.index") + "#system-opt-outs")
    return vary_on_htmx(
        current_app.make_response(
            render_template(
                "system/partials/_possible_opt_outs.html",
                **possible_opt_outs_context("system", page_number()),
            )
        )
    )


@bp.post("/possible-opt-outs/<int:inbound_id>")
@require_role(Role.OPERATOR)
def decide_possible_opt_out(inbound_id: int):
    """Unsubscribe the sender of a reply that reads like an opt-out, or keep them."""
    decision = request.form.get("decision", "")
    if decision not in {"unsubscribe", "keep"}:
        raise ValidationError("Choose whether to unsubscribe this person or keep them subscribed.")
    where = request.form.get("where") if request.form.get("where") in OPT_OUT_LISTS else "system"
    message = resolve_possible_opt_out(
        inbound_id, unsubscribe=decision == "unsubscribe", user=current_user
    )
    db.session.commit()
    if decision == "unsubscribe":
        flash(f"{phone(message.phone)} is unsubscribed.", "success")
    else:
        flash(f"{phone(message.phone)} stays subscribed.", "success")
    if is_htmx():
        return render_template(
            "system/partials/_possible_opt_outs.html", **possible_opt_outs_context(where)
        ) + render_template("partials/_flash_oob.html")
    if where == "dashboard":
        return redirect(url_for("dashboard.index") + "#dashboard-opt-outs")
    return redirect(url_for("system.index") + "#system-opt-outs")


def _periodic_job_or_404(job_id: str):
    job = job_by_id(job_id)
    if job is None:
        abort(404, description=f"There is no periodic job called {job_id!r}.")
    return job


def _periodic_row(job_id: str):
    status = periodic_job_status(current_app, _periodic_job_or_404(job_id), utcnow(), org_zone())
    return render_template("system/partials/_periodic_job.html", s=status)


@bp.get("/periodic/<job_id>")
def periodic_job(job_id: str):
    """One periodic job's row (it polls this while a run is queued or running)."""
    if not wants_partial():
        _periodic_job_or_404(job_id)
        return redirect(url_for("system.index") + f"#system-periodic-{job_id}")
    status = periodic_job_status(current_app, _periodic_job_or_404(job_id), utcnow(), org_zone())
    response = current_app.make_response(
        render_template("system/partials/_periodic_job.html", s=status)
    )
    if request.args.get("active") and not status.active:
        hx_trigger(response, "system-job-runs-changed")  # the run just ended: list it
    return vary_on_htmx(response)


def _at_local(moment: datetime) -> str:
    return localtime(moment, "%-I:%M %p on %b %-d")


@bp.post("/periodic/<job_id>/run")
@require_role(Role.OPERATOR)
def run_periodic_job(job_id: str):
    """Run now: queue one run of the job for a worker (never run here); refused with 409 when
    one is already queued or running, 503 when Redis does not answer."""
    job = _periodic_job_or_404(job_id)
    try:
        queued = run_now(current_app, job, utcnow(), _at_local)
    except RunRefused as refused:
        abort(refused.status, description=refused.message)
    record_audit(
        "periodic_job.run_now",
        user=current_user,
        object_type="periodic_job",
        object_id=job.id,
        summary=f"Queued a run of {job.id} on the {job.queue} queue",
        details={"rq_job_id": queued.id},
        ip_address=request.remote_addr,
    )
    db.session.commit()
    flash(queued_message(current_app, job), "success")
    if is_htmx():
        return _periodic_row(job_id) + render_template("partials/_flash_oob.html")
    return redirect(url_for("system.index") + f"#system-periodic-{job_id}")
