"""The System page and /healthz."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.extensions import db
from app.htmx import is_htmx, vary_on_htmx, wants_partial
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
from app.system.services import (
    OPT_OUT_LISTS,
    health_report,
    job_runs_query,
    periodic_job_statuses,
    possible_opt_outs_context,
    queue_statuses,
    worker_statuses,
)
from app.templating import phone
from app.validation import ValidationError

bp = Blueprint("system", __name__, url_prefix="/system")
health_bp = Blueprint("health", __name__)


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
        periodic=periodic_job_statuses(),
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
