"""Property: no file, however odd, makes the upload pipeline answer 500 or write partially.

Each generated file is uploaded through the page, validated and imported by the real jobs. Either
it is refused as a whole (a 4xx, nothing stored) or exactly its valid rows end up imported.
"""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.jobs.imports import import_upload, validate_upload
from app.models import Contact, Upload, UploadContact, UploadStatus

CELLS = st.one_of(
    st.sampled_from(
        [
            "3135550101",
            "+1 313 555 0102",
            "(313) 555-0103",
            "1-313-555-0104",
            "+44 20 7946 0958",
            "12",
            "",
            " ",
            "phone",
            "Name",
            "message",
            "=HYPERLINK()",
            '"',
            "a,b",
            "x;y",
            "é",
        ]
    ),
    st.text(max_size=12),
)
ROWS = st.lists(st.lists(CELLS, max_size=4), max_size=8)


@st.composite
def csv_files(draw) -> bytes:
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=300))
    rows = draw(ROWS)
    separator = draw(st.sampled_from([",", ";", "\t"]))
    out = io.StringIO()
    if draw(st.booleans()):
        csv.writer(out, delimiter=separator).writerows(rows)
    else:  # hand-made, unquoted: stray quotes and separators inside cells
        out.write("\n".join(separator.join(row) for row in rows))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return out.getvalue().encode(encoding, errors="replace")


def totals() -> tuple[int, int, int]:
    def count(model) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))

    return count(Upload), count(Contact), count(UploadContact)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=csv_files())
def test_no_file_makes_the_import_fail_or_write_partially(operator_client, content):
    uploads, contacts, links = totals()
    response = operator_client.post(
        "/uploads/",
        data={"file": (io.BytesIO(content), "generated.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code in (302, 422), response.status_code
    if response.status_code == 422:
        assert totals() == (uploads, contacts, links)
        return
    upload = db.session.scalar(sa.select(Upload).order_by(Upload.id.desc()).limit(1))
    validate_upload(upload.id)
    db.session.refresh(upload)
    assert upload.status in (UploadStatus.VALIDATED, UploadStatus.FAILED)
    assert totals()[1:] == (contacts, links)  # validation writes no contact
    if upload.status == UploadStatus.FAILED or not upload.valid_rows:
        return
    rows = upload.valid_rows + upload.invalid_rows + upload.duplicate_rows
    assert rows == upload.total_rows
    assert operator_client.post(f"/uploads/{upload.id}/import").status_code == 302
    db.session.expire_all()  # the request committed through its own session
    import_upload(upload.id)
    db.session.refresh(upload)
    assert upload.status == UploadStatus.DONE
    assert upload.created_count + upload.updated_count == upload.valid_rows
    assert totals() == (uploads + 1, contacts + upload.created_count, links + upload.valid_rows)
    page = operator_client.get(f"/uploads/{upload.id}")
    assert page.status_code == 200
    assert operator_client.get(f"/uploads/{upload.id}/errors.csv").status_code == 200
