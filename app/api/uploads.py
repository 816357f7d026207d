"""Uploads in the API: an upload's status and counts, and its per-row report."""

from __future__ import annotations

from flask import request

from app.api.common import get_or_problem
from app.api.routes import bp
from app.api.schemas import ReportQuery, UploadIssue, UploadReport
from app.api.schemas import Upload as UploadBody
from app.api.spec import api, responses
from app.models import Upload
from app.security import public
from app.uploads.services import issues_page

TAG = ["uploads"]
REPORT_PAGE = 100


def upload_body(upload: Upload) -> UploadBody:
    return UploadBody(
        id=upload.id,
        filename=upload.filename,
        purpose=upload.purpose.value,
        status=upload.status.value,
        progress=upload.progress,
        total_rows=upload.total_rows,
        valid_rows=upload.valid_rows,
        invalid_rows=upload.invalid_rows,
        duplicate_rows=upload.duplicate_rows,
        unsubscribed_rows=upload.unsubscribed_rows,
        created_count=upload.created_count,
        updated_count=upload.updated_count,
        columns=list(upload.columns or []),
        phone_column=upload.phone_column,
        error_message=upload.error_message,
        started_at=upload.started_at,
        finished_at=upload.finished_at,
    )


@bp.get("/v1/uploads/<int:upload_id>")
@public
@api.validate(resp=responses(UploadBody), tags=TAG, operation_id="getUpload")
def get_upload(upload_id: int):
    """An upload's status (pending, validating, validated, importing, done, failed) and counts."""
    return upload_body(get_or_problem(Upload, upload_id, "upload"))


@bp.get("/v1/uploads/<int:upload_id>/report")
@public
@api.validate(
    query=ReportQuery, resp=responses(UploadReport), tags=TAG, operation_id="getUploadReport"
)
def get_upload_report(upload_id: int):
    """The rows that were not imported, or were flagged, with why (100 a page)."""
    upload = get_or_problem(Upload, upload_id, "upload")
    query: ReportQuery = request.context.query
    issues, pages = issues_page(upload, query.page, REPORT_PAGE)
    return UploadReport(
        upload=upload_body(upload),
        issues=[UploadIssue.model_validate(issue) for issue in issues],
        page=min(query.page, pages),
        pages=pages,
    )
