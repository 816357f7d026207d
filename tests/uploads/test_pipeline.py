"""The upload pipeline end to end: upload, validation job with progress, report, import job."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from rq import Queue

from app.extensions import db
from app.jobs import QUEUE_DEFAULT
from app.jobs.imports import import_upload, validate_upload
from app.models import (
    AuditLog,
    Contact,
    ContactSource,
    Upload,
    UploadContact,
    UploadStatus,
)
from tests.factories import ContactFactory, UploadFactory
from tests.support import HX, by_id

GOOD = (
    b"phone,name,zip,neighborhood\n"
    b"(313) 555-0101,Ava,48201,Midtown\n"
    b"313-555-0102,Ben,48226,\n"
    b"not a number,Cleo,48201,\n"
    b"+1 313 555 0101,Ava again,,\n"
    b"3135550103,Dee,,Corktown\n"
)


def upload_file(client, content: bytes, filename: str = "list.csv"):
    return client.post(
        "/uploads/",
        data={"file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def latest_upload() -> Upload:
    return db.session.scalar(sa.select(Upload).order_by(Upload.id.desc()).limit(1))


def test_upload_enqueues_validation_and_shows_a_polling_progress_page(operator_client, redis_conn):
    response = upload_file(operator_client, GOOD)
    upload = latest_upload()
    assert response.status_code == 302 and response.location.endswith(f"/uploads/{upload.id}")
    assert upload.status == UploadStatus.PENDING and upload.total_rows == 5
    jobs = Queue(QUEUE_DEFAULT, connection=redis_conn).jobs
    assert [(j.func_name, j.args) for j in jobs] == [
        ("app.jobs.imports.validate_upload", (upload.id,))
    ]
    page = operator_client.get(f"/uploads/{upload.id}")
    html = page.get_data(as_text=True)
    assert "<html" in html and 'hx-trigger="every 2s"' in html and "uploads-progress" in html
    partial = operator_client.get(f"/uploads/{upload.id}", headers=HX).get_data(as_text=True)
    assert "<html" not in partial and 'id="uploads-status"' in partial
    assert "HX-Request" in page.headers["Vary"]


def test_validation_reports_every_kind_of_row_and_writes_no_contact(operator_client):
    ContactFactory(phone="+13135550103", unsubscribed=True)
    db.session.commit()
    upload_file(operator_client, GOOD)
    upload = latest_upload()
    before = count(Contact)

    result = validate_upload(upload.id)

    assert result["status"] == "validated"
    db.session.refresh(upload)
    assert upload.status == UploadStatus.VALIDATED
    assert (upload.valid_rows, upload.invalid_rows, upload.duplicate_rows) == (3, 1, 1)
    assert upload.unsubscribed_rows == 1 and upload.progress == 5
    assert [(e["row"], e["kind"]) for e in upload.errors] == [
        (4, "invalid number"),
        (5, "duplicate"),
        (6, "unsubscribed"),
    ]
    assert upload.errors[1]["first_row"] == 2
    assert count(Contact) == before and count(UploadContact) == 0

    page = operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' not in page
    assert 'id="uploads-valid">3<' in page and "Same number as row 2." in page
    assert 'id="uploads-import"' in page

    report = operator_client.get(f"/uploads/{upload.id}/errors.csv")
    assert report.mimetype == "text/csv" and "attachment" in report.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert rows[0] == ["row", "problem", "imported", "phone", "name", "zip", "neighborhood"]
    assert rows[1][:4] == ["4", "invalid number: Not a valid phone number.", "no", "not a number"]
    assert rows[3][2] == "yes"


def test_each_problem_row_says_row_before_its_number_for_the_stacked_narrow_layout(
    operator_client,
):
    upload_file(operator_client, GOOD)
    upload = latest_upload()
    validate_upload(upload.id)
    issues = by_id(
        operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True), "uploads-issues"
    )
    body = issues[issues.index("<tbody>") :]
    # At 320 px the table stacks and hides its head: each row's number keeps its label.
    assert body.count('<td><span class="cell-label">Row</span>') == body.count("<tr>") == 2
    assert '<span class="cell-label">Row</span>4</td>' in body


def test_import_creates_upload_contacts_and_keeps_existing_sources(operator_client):
    known = ContactFactory(
        phone="+13135550102", name=None, zip_code=None, attributes={"language": "en"}
    )
    db.session.commit()
    upload_file(operator_client, GOOD)
    upload = latest_upload()
    validate_upload(upload.id)
    response = operator_client.post(f"/uploads/{upload.id}/import")
    assert response.status_code == 302
    db.session.refresh(upload)
    assert upload.status == UploadStatus.IMPORTING

    result = import_upload(upload.id)

    assert result["status"] == "done"
    db.session.refresh(upload)
    assert upload.status == UploadStatus.DONE and upload.staged_rows is None
    assert (upload.created_count, upload.updated_count, upload.progress) == (2, 1, 3)
    ava = db.session.scalar(sa.select(Contact).where(Contact.phone == "+13135550101"))
    assert ava.source == ContactSource.UPLOAD and ava.name == "Ava" and ava.zip_code == "48201"
    assert ava.attributes == {"neighborhood": "Midtown"}
    db.session.refresh(known)
    assert known.source == ContactSource.CONVERSATION
    assert (
        known.name == "Ben" and known.zip_code == "48226" and known.attributes == {"language": "en"}
    )
    links = db.session.execute(
        sa.select(UploadContact.row_number, UploadContact.data).order_by(UploadContact.row_number)
    ).all()
    assert [row for row, _ in links] == [2, 3, 6]
    assert links[0][1] == {}  # a contact import keeps its columns on the contacts
    assert db.session.scalar(sa.select(AuditLog.action).where(AuditLog.action == "import"))
    page = operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert 'id="uploads-done"' in page

    # Both jobs may run twice: nothing changes the second time.
    assert "skipped" in import_upload(upload.id)
    assert "skipped" in validate_upload(upload.id)
    assert count(UploadContact) == 3


def test_import_in_batches_resumes_where_a_previous_run_stopped(operator_client):
    from app.uploads.services import import_upload_batches, record_batch

    content = b"phone\n" + b"".join(f"31355502{i:02d}\n".encode() for i in range(10))
    upload_file(operator_client, content)
    upload = latest_upload()
    validate_upload(upload.id)
    operator_client.post(f"/uploads/{upload.id}/import")
    db.session.refresh(upload)
    seen = []

    def stop_after_first(batch):
        record_batch(upload, batch)
        db.session.commit()
        seen.append(batch.done)
        if batch.done == 4:
            raise KeyboardInterrupt  # the worker dies after its first batch

    try:
        import_upload_batches(upload, stop_after_first, batch_size=4)
    except KeyboardInterrupt:
        pass
    assert seen == [4] and count(UploadContact) == 4
    import_upload_batches(upload, lambda b: (record_batch(upload, b), seen.append(b.done)), 4)
    assert seen == [4, 8, 10] and count(UploadContact) == 10
    assert upload.created_count == 10


def test_importing_twice_or_before_validation_is_refused(operator_client):
    upload_file(operator_client, GOOD)
    upload = latest_upload()
    response = operator_client.post(f"/uploads/{upload.id}/import", follow_redirects=True)
    assert "only a validated file is imported" in response.get_data(as_text=True)
    assert latest_upload().status == UploadStatus.PENDING


def test_a_file_with_no_valid_row_cannot_be_imported(operator_client):
    upload_file(operator_client, b"phone\n12\n34\n")
    upload = latest_upload()
    validate_upload(upload.id)
    page = operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert "nothing to import" in page and 'id="uploads-import"' not in page
    response = operator_client.post(f"/uploads/{upload.id}/import", follow_redirects=True)
    assert "No valid row to import" in response.get_data(as_text=True)


def test_bad_files_are_refused_at_once_with_422_and_nothing_stored(operator_client):
    cases = [
        (b"", "list.csv", "The file is empty."),
        (b"phone\n", "list.csv", "header row but no data rows"),
        (b"\x00\x01\x02binary", "list.csv", "binary data"),
        ("phone\n3135551234,Chlo\xe9\n".encode("latin-1"), "list.csv", "not UTF-8"),
        (b"phone\n3135551234\n", "list.xlsx", "Choose a .csv file."),
    ]
    for content, name, message in cases:
        response = upload_file(operator_client, content, name)
        assert response.status_code == 422, message
        assert message in response.get_data(as_text=True), message
    assert count(Upload) == 0


def test_too_many_rows_are_refused(operator_client, app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_ROWS", 3)
    response = upload_file(operator_client, b"phone\n" + b"3135551234\n" * 4)
    assert response.status_code == 422 and "more than 3 rows" in response.get_data(as_text=True)


def test_a_file_that_became_unreadable_fails_the_validation_with_its_message(operator_client):
    upload_file(operator_client, GOOD)
    upload = latest_upload()
    upload.content = b"phone\n"
    db.session.commit()
    assert validate_upload(upload.id)["status"] == "failed"
    db.session.refresh(upload)
    assert upload.status == UploadStatus.FAILED
    page = operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert "header row but no data rows" in page and 'hx-trigger="every 2s"' not in page


def test_uploads_list_full_page_and_partial(operator_client):
    UploadFactory(filename="spring.csv")
    UploadFactory(filename="autumn.csv", done=True)
    db.session.commit()
    page = operator_client.get("/uploads/")
    assert "spring.csv" in page.get_data(as_text=True) and "HX-Request" in page.headers["Vary"]
    partial = operator_client.get("/uploads/?q=autumn", headers=HX).get_data(as_text=True)
    assert "<html" not in partial and "autumn.csv" in partial and "spring.csv" not in partial


def test_viewers_cannot_upload(viewer_client):
    assert viewer_client.get("/uploads/").status_code == 200
    assert viewer_client.get("/uploads/new").status_code == 403
    assert upload_file(viewer_client, GOOD).status_code == 403


def test_issues_are_paginated(operator_client):
    content = b"phone\n" + b"".join(f"bad{i}\n".encode() for i in range(120))
    upload_file(operator_client, content)
    upload = latest_upload()
    validate_upload(upload.id)
    page = operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert "Page 1 of 3" in page and "bad0<" in page and "bad60<" not in page
    partial = operator_client.get(f"/uploads/{upload.id}?page=2", headers=HX).get_data(as_text=True)
    assert "<html" not in partial and "bad60<" in partial and "Page 2 of 3" in partial
