"""CSV upload jobs: validate a file, then import it. Functions of an upload id; safe to run twice."""

from __future__ import annotations

import time
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

# The progress page polls every 2 s: committing progress more often only slows the job (a
# 100,000-row file validates in about a second and reports every 5,000 rows).
PROGRESS_COMMIT_SECONDS = 0.5


def validate_upload(upload_id: int) -> dict[str, Any]:
    """Validate an uploaded file, committing its progress every half second or so.

    Returns early unless the upload waits for validation (or a previous run died mid-way)."""
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status not in (UploadStatus.PENDING, UploadStatus.VALIDATING):
        return {"upload_id": upload_id, "skipped": "not waiting for validation"}
    upload.status = UploadStatus.VALIDATING
    upload.progress = 0
    db.session.commit()

    last_commit = time.monotonic()

    def progress(done: int) -> None:
        nonlocal last_commit
        if time.monotonic() - last_commit < PROGRESS_COMMIT_SECONDS:
            return
        upload.progress = done
        db.session.commit()
        last_commit = time.monotonic()

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
