"""Uploads pages: upload a CSV, watch its validation, read the report, import, download errors."""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from redis.exceptions import RedisError

from app.extensions import db
from app.htmx import hx_redirect, vary_on_htmx, wants_partial
from app.models import Role, Upload, UploadStatus
from app.pagination import page_number
from app.security import require_role
from app.uploads.forms import UploadForm
from app.uploads.services import (
    ACTIVE_STATUSES,
    create_upload,
    enqueue_upload_job,
    errors_csv,
    issues_page,
    start_import,
    uploads_query,
)
from app.validation import ValidationError

bp = Blueprint("uploads", __name__, url_prefix="/uploads")


def _enqueue(upload: Upload, job: str) -> None:
    try:
        enqueue_upload_job(upload.id, job)
    except (RedisError, OSError):
        flash(
            "The job queue does not answer, so nothing runs yet: the file is saved. "
            "Try again in a minute.",
            "error",
        )


@bp.get("/")
def index():
    search = request.args.get("q", "").strip()[:100]
    status = request.args.get("status", "")
    status = status if status in {s.value for s in UploadStatus} else ""
    uploads = db.paginate(
        uploads_query(search, status), page=page_number(), per_page=50, error_out=False
    )
    context = dict(uploads=uploads, search=search, status=status)
    if wants_partial():
        html = render_template("uploads/partials/_rows.html", **context)
    else:
        html = render_template("uploads/index.html", statuses=list(UploadStatus), **context)
    return vary_on_htmx(current_app.make_response(html))


@bp.get("/new")
@require_role(Role.OPERATOR)
def new():
    return render_template("uploads/new.html", form=UploadForm())


@bp.post("/")
@require_role(Role.OPERATOR)
def create():
    form = UploadForm()
    if form.validate_on_submit():
        file = form.file.data
        try:
            upload = create_upload(
                file.filename or "",
                file.read(),
                user=current_user,
                ip_address=request.remote_addr,
            )
        except ValidationError as exc:
            form.file.errors.append(exc.message)
        else:
            db.session.commit()
            _enqueue(upload, "validate_upload")
            return redirect(url_for("uploads.show", upload_id=upload.id))
    db.session.rollback()
    return render_template("uploads/new.html", form=form), 422


def _status_context(upload: Upload) -> dict:
    issues, pages = issues_page(upload, page_number())
    return dict(
        upload=upload, issues=issues, issue_pages=pages, issue_page=min(page_number(), pages)
    )


@bp.get("/<int:upload_id>")
def show(upload_id: int):
    upload = db.get_or_404(Upload, upload_id)
    context = _status_context(upload)
    if wants_partial():
        template = (
            "uploads/partials/_issues.html"
            if request.args.get("page")
            else "uploads/partials/_status.html"
        )
        html = render_template(template, **context)
    else:
        html = render_template("uploads/show.html", **context)
    return vary_on_htmx(current_app.make_response(html))


@bp.post("/<int:upload_id>/import")
@require_role(Role.OPERATOR)
def start(upload_id: int):
    upload = db.get_or_404(Upload, upload_id)
    try:
        start_import(upload, user=current_user, ip_address=request.remote_addr)
    except ValidationError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        _enqueue(upload, "import_upload")
    target = url_for("uploads.show", upload_id=upload_id)
    if wants_partial():
        return hx_redirect(Response(status=204), target)
    return redirect(target)


@bp.get("/<int:upload_id>/errors.csv")
def errors(upload_id: int):
    upload = db.get_or_404(Upload, upload_id)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", upload.filename.rsplit(".", 1)[0]).strip("-.")
    return Response(
        errors_csv(upload),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name or "upload"}-problems.csv"'},
    )


def is_active(upload: Upload) -> bool:
    return upload.status in ACTIVE_STATUSES


bp.add_app_template_global(is_active, "upload_is_active")
