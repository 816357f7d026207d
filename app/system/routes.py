"""The System page and /healthz."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request

from app.extensions import db
from app.htmx import vary_on_htmx, wants_partial
from app.pagination import page_number
from app.security import public
from app.system.services import (
    health_report,
    job_runs_query,
    periodic_job_statuses,
    queue_statuses,
    worker_statuses,
)

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
