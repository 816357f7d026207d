"""Reading CSV files: encodings, separators, header detection, limits, and every bad kind of file."""

from __future__ import annotations

import pytest

from app.models import UploadPurpose
from app.uploads.parsing import (
    IssueKind,
    decode_staged,
    encode_staged,
    read_csv,
    validate_rows,
)
from app.validation import ValidationError


def read(content: bytes, **kwargs):
    kwargs.setdefault("max_rows", 1000)
    return read_csv(content, **kwargs)


def test_utf8_with_bom_comma_header_and_phone_column_found_by_name():
    table = read("\ufeffName,Mobile Number,Zip\nChloé,(313) 555-1234,48201\n".encode())
    assert table.has_header and table.columns == ["Name", "Mobile Number", "Zip"]
    assert table.phone_column == "Mobile Number" and table.separator == ","
    result = validate_rows(table)
    (row,) = result.valid
    assert (row.row_number, row.phone, row.name, row.zip_code) == (
        2,
        "+13135551234",
        "Chloé",
        "48201",
    )


def test_semicolons_and_no_header_use_the_first_column():
    table = read(b"3135551234;Ava\n+1 313 555 1235;Ben\n")
    assert not table.has_header and table.separator == ";"
    assert [r.phone for r in validate_rows(table).valid] == ["+13135551234", "+13135551235"]
    assert table.columns == ["column 1", "column 2"]


def test_a_header_with_unknown_names_is_still_a_header_not_a_number():
    table = read(b"Telefono,Nombre\n3135551234,Ana\n")
    assert table.has_header and table.phone_index == 0
    assert validate_rows(table).valid[0].row_number == 2


def test_crlf_blank_lines_quotes_and_short_rows():
    table = read(b'phone,name,notes\r\n\r\n3135551234,"Doe, Jane","line\nbreak"\r\n3135551235\r\n')
    result = validate_rows(table)
    assert [r.name for r in result.valid] == ["Doe, Jane", None]
    assert result.valid[0].attributes == {"notes": "line\nbreak"}


def test_invalid_missing_and_duplicate_rows_are_reported_with_the_first_row():
    table = read(b"phone,name\n3135551234,a\n12,b\n\n+1 (313) 555-1234,c\n,d\nabc,e\n")
    result = validate_rows(table)
    kinds = [(i.row, i.kind, i.first_row) for i in result.issues]
    assert kinds == [
        (3, IssueKind.INVALID, None),
        (5, IssueKind.DUPLICATE, 2),
        (6, IssueKind.MISSING, None),
        (7, IssueKind.INVALID, None),
    ]
    assert (len(result.valid), result.invalid, result.duplicates) == (1, 3, 1)


def test_personalized_files_need_a_message_column_and_a_message_per_row():
    with pytest.raises(ValidationError, match="No message column"):
        read(b"phone\n3135551234\n", purpose=UploadPurpose.PERSONALIZED)
    table = read(b"phone,message\n3135551234,Hi Ava\n3135551235,\n", purpose="personalized")
    result = validate_rows(table, purpose="personalized")
    assert [r.message for r in result.valid] == ["Hi Ava"]
    assert result.valid[0].data == {"message": "Hi Ava"}  # merge fields for campaigns
    assert result.issues[0].kind == IssueKind.MISSING_MESSAGE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"  \n\n \r\n", "The file is empty."),
        (b",,\n,,\n", "The file is empty."),
        (b"phone,name\n", "header row but no data rows"),
        (b"\xef\xbb\xbfphone\n\n", "header row but no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
        ("phone\n3135551234\n".encode("utf-16"), "UTF-16"),
        ("phone,name\n3135551234,Chlo\xe9\n".encode("latin-1"), "not UTF-8"),
        (b'phone\n"' + b"x" * 200_000 + b'"\n', "could not be read"),
    ],
)
def test_bad_files_get_a_clear_message(content, message):
    with pytest.raises(ValidationError) as caught:
        read(content)
    assert message in caught.value.message and caught.value.field == "file"


def test_the_row_limit():
    content = b"phone\n" + b"3135551234\n" * 11
    assert read(content, max_rows=11).row_count == 11
    with pytest.raises(ValidationError, match="more than 10 rows"):
        read(content, max_rows=10)


def test_staged_rows_survive_tabs_newlines_backslashes_and_nulls():
    table = read(b'phone,name,note\n3135551234,"a\tb\\c","x\ny"\n3135551235,,\n')
    result = validate_rows(table)
    rows = list(decode_staged(encode_staged(result.valid)))
    assert rows[0][:3] == ("2", "+13135551234", "a\tb\\c")
    assert rows[0][6] == '{"note": "x\\ny"}'
    assert rows[1][2] is None and rows[1][6] == "{}"
