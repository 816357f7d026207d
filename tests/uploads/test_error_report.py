"""The upload's error report is formula-safe like every CSV download: header cells too."""

from __future__ import annotations

import csv
import io

from app.jobs.imports import validate_upload
from tests.uploads.test_pipeline import latest_upload, upload_file

FORMULAS = (
    b'phone,=HYPERLINK("http://evil"),note\n'
    b"not a number,=1+2,-1+2\n"
    b"3135550101,@SUM(A1),+1+1\n"
    b"3135550101,Ava,plain\n"
)


def test_formula_cells_in_the_report_are_quoted_and_phone_numbers_are_not(operator_client):
    upload_file(operator_client, FORMULAS)
    upload = latest_upload()
    validate_upload(upload.id)
    report = operator_client.get(f"/uploads/{upload.id}/errors.csv")
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert rows[0] == ["row", "problem", "imported", "phone", '\'=HYPERLINK("http://evil")', "note"]
    by_row = {row[0]: row for row in rows[1:]}
    assert by_row["2"][3:] == ["not a number", "'=1+2", "'-1+2"]
    assert by_row["4"][3:] == ["3135550101", "Ava", "plain"]  # the duplicate: nothing to quote
