"""CSV upload jobs: validate a file, then import it. Functions of an upload id; safe to run twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.models import Upload, UploadStatus
from app.uploads.services import (
    BatchResult,
    fail_upload,
    finish_import,
    import_upload_batches,
    record_batch,
    validate_upload_file,
)


def validate_upload(upload_id: int) -> dict[str, Any]:
    """Validate an uploaded file, committing its progress every few thousand rows.

    Returns early unless the upload waits for validation (or a previous run died mid-way)."""
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status not in (UploadStatus.PENDING, UploadStatus.VALIDATING):
        return {"upload_id": upload_id, "skipped": "not waiting for validation"}
    upload.status = UploadStatus.VALIDATING
    upload.progress = 0
    db.session.commit()

    def progress(done: int) -> None:
        upload.progress = done
        db.session.commit()

    result = validate_upload_file(upload, on_progress=progress)
    db.session.commit()
    return {"upload_id": upload_id, **result}


def import_upload(upload_id: int) -> dict[str, Any]:
    """Import a validated upload's rows in batches, one commit per batch (a rerun resumes).

    Returns early unless the upload was marked for import (`importing`)."""
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status != UploadStatus.IMPORTING:
        return {"upload_id": upload_id, "skipped": "not marked for import"}

    def commit_batch(batch: BatchResult) -> None:
        record_batch(upload, batch)
        db.session.commit()

    try:
        result = import_upload_batches(upload, commit_batch)
    except SQLAlchemyError:
        # Record why on the upload (so the page stops polling and says so), then let RQ see it.
        db.session.rollback()
        fail_upload(
            upload, "The import stopped on a database error; rows imported so far are kept."
        )
        db.session.commit()
        raise
    finish_import(upload)
    db.session.commit()
    return {"upload_id": upload_id, "status": "done", **result}
