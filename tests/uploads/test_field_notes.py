"""A CSV import with a bad email or zip code: the row is imported without that value, and the
report says which row, what was left out and why."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from app.extensions import db
from app.jobs.imports import import_upload, validate_upload
from app.models import Contact, UploadStatus
from app.uploads.parsing import IssueKind, read_csv, validate_rows
from tests.factories import ContactFactory
from tests.support import by_id
from tests.uploads.test_pipeline import latest_upload, upload_file

FILE = (
    b"phone,name,email,zip\n"
    b"(313) 555-0141,Ava,ava@example.org,48201\n"
    b"(313) 555-0142,Dwayne,dwayne@example,48226\n"
    b"(313) 555-0143,Cleo,cleo@example.org,abc\n"
    b"(313) 555-0144,Dee,dee@@example,4820\n"
    b"(313) 555-0145,Eli,Eli@Example.ORG,48201-1234\n"
)


def test_bad_emails_and_zip_codes_become_notes_and_the_rows_stay_valid():
    result = validate_rows(read_csv(FILE, max_rows=1000), zip_region="US")
    assert [r.row_number for r in result.valid] == [2, 3, 4, 5, 6]
    stored = {r.name: (r.email, r.zip_code) for r in result.valid}
    assert stored == {
        "Ava": ("ava@example.org", "48201"),
        "Dwayne": (None, "48226"),
        "Cleo": ("cleo@example.org", None),
        "Dee": (None, None),
        "Eli": ("Eli@example.org", "48201-1234"),
    }
    notes = [(i.row, i.kind, i.value) for i in result.issues]
    assert notes == [
        (3, IssueKind.BAD_EMAIL, "dwayne@example"),
        (4, IssueKind.BAD_ZIP, "abc"),
        (5, IssueKind.BAD_EMAIL, "dee@@example"),
        (5, IssueKind.BAD_ZIP, "4820"),
    ]
    assert result.issues[0].message == (
        "“dwayne@example” is not an email address: The part after the @-sign is not valid. "
        "It should have a period. Imported without the email."
    )
    assert result.issues[1].message.endswith(
        "use 5 digits (48201) or ZIP+4. Imported without the zip code."
    )
    assert result.field_notes == 3 and result.invalid == 0


def test_outside_the_us_a_zip_code_is_not_held_to_five_digits():
    result = validate_rows(read_csv(FILE, max_rows=1000), zip_region="GB")
    assert [i.kind for i in result.issues] == [IssueKind.BAD_EMAIL, IssueKind.BAD_EMAIL]
    assert {r.name: r.zip_code for r in result.valid}["Cleo"] == "abc"


def test_the_import_stores_the_rows_without_the_bad_values_and_the_report_says_so(
    operator_client,
):
    known = ContactFactory(phone="+13135550143", email="cleo@old.example.org", zip_code="48207")
    db.session.commit()
    upload_file(operator_client, FILE)
    upload = latest_upload()
    validate_upload(upload.id)
    db.session.refresh(upload)
    assert upload.status == UploadStatus.VALIDATED and upload.valid_rows == 5
    assert upload.invalid_rows == 0 and upload.unsubscribed_rows == 0

    page = operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert by_id(page, "uploads-fields-left-out").text == "3"
    assert (
        "3 rows are imported without their email or zip code, which are not valid "
        "(see the notes below)." in page
    )
    issues = by_id(page, "uploads-issues")
    assert "bad email" in issues and "dwayne@example" in issues and "bad zip code" in issues

    assert operator_client.post(f"/uploads/{upload.id}/import").status_code == 302
    db.session.refresh(upload)
    assert import_upload(upload.id)["status"] == "done"
    people = {
        c.name: (c.email, c.zip_code)
        for c in db.session.scalars(sa.select(Contact).where(Contact.phone.like("+131355501_%")))
    }
    assert people["Dwayne"] == (None, "48226")
    assert people["Dee"] == (None, None)
    assert people["Eli"] == ("Eli@example.org", "48201-1234")
    db.session.refresh(known)
    # A known contact keeps its own email; a bad zip code never replaces a good one.
    assert (known.email, known.zip_code) == ("cleo@old.example.org", "48207")

    report = operator_client.get(f"/uploads/{upload.id}/errors.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[1][:3] == [
        "3",
        "bad email: “dwayne@example” is not an email address: The part after the @-sign is "
        "not valid. It should have a period. Imported without the email.",
        "yes",
    ]
    assert [row[2] for row in rows[1:]] == ["yes"] * 4
    done = operator_client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert "3 rows without their bad email or zip code" in by_id(done, "uploads-done").text
