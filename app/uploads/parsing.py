"""Reading and checking CSV files (SPEC 7): pure functions of bytes, no database and no web code.

Contact imports, campaign lists and personalized campaigns all go through `read_csv` (the file as
a whole: encoding, separator, header, columns, size) and `validate_rows` (each row: its number
in E.164, duplicates, the message of personalized rows). File-level problems raise
ValidationError with a message a person can act on; row-level problems become `RowIssue`s.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from app.contacts.fields import FieldProblem, check_email, check_zip_code
from app.contacts.phones import DEFAULT_REGION, normalize_phone
from app.models import UploadPurpose
from app.validation import ValidationError

PHONE_NAMES = {
    "phone",
    "phone_number",
    "phonenumber",
    "phone_no",
    "number",
    "mobile",
    "mobile_number",
    "mobile_phone",
    "cell",
    "cell_phone",
    "cellphone",
    "telephone",
    "tel",
    "msisdn",
    "to",
}
MESSAGE_NAMES = {"message", "body", "text", "sms", "message_body", "msg", "message_text"}
NAME_NAMES = {"name", "full_name", "fullname", "contact_name", "first_name", "firstname"}
EMAIL_NAMES = {"email", "e_mail", "email_address", "mail"}
ZIP_NAMES = {"zip", "zip_code", "zipcode", "postal_code", "postcode", "postal", "zip5"}
KNOWN_NAMES = PHONE_NAMES | MESSAGE_NAMES | NAME_NAMES | EMAIL_NAMES | ZIP_NAMES
SEPARATORS = (",", ";", "\t")
PROGRESS_EVERY = 5_000
MAX_ATTRIBUTE_LENGTH = 500
_FIVE_DIGITS = re.compile(r"\d[\d\s().+-]{3,}\d")


class IssueKind:
    MISSING = "missing number"
    INVALID = "invalid number"
    DUPLICATE = "duplicate"
    MISSING_MESSAGE = "missing message"
    UNSUBSCRIBED = "unsubscribed"
    EXCLUDED = "excluded"
    BAD_EMAIL = "bad email"
    BAD_ZIP = "bad zip code"


# Issues that keep a row out of the import; the others are notes (the row is imported).
REJECTING = {IssueKind.MISSING, IssueKind.INVALID, IssueKind.DUPLICATE, IssueKind.MISSING_MESSAGE}
# Notes on a value the row brought that is not stored (the row is imported without it).
FIELD_NOTES = {IssueKind.BAD_EMAIL, IssueKind.BAD_ZIP}


def column_key(name: str) -> str:
    """`Phone Number` -> `phone_number`: how header names are compared."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


@dataclass
class CsvTable:
    """A decoded file: its columns and rows (with their row numbers as a spreadsheet shows them)."""

    columns: list[str]
    has_header: bool
    separator: str
    phone_index: int
    message_index: int | None
    name_index: int | None
    email_index: int | None
    zip_index: int | None
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    row_count: int = 0

    @property
    def phone_column(self) -> str:
        return self.columns[self.phone_index]


def decode_csv(content: bytes) -> str:
    """The file's text, or ValidationError saying why it is not a UTF-8 CSV file."""
    if not content or not content.strip():
        raise ValidationError("The file is empty.", field="file")
    if content.startswith(b"PK\x03\x04"):
        raise ValidationError(
            "This looks like an Excel workbook. Save it as “CSV UTF-8” and upload that.",
            field="file",
        )
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValidationError(
            "The file is saved as UTF-16. Save it as “CSV UTF-8” and upload again.", field="file"
        )
    if b"\x00" in content:
        raise ValidationError(
            "This is not a text CSV file (it contains binary data). Upload a .csv file.",
            field="file",
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"The file is not UTF-8 text (an unreadable byte at position {exc.start:,}). "
            "Save it as “CSV UTF-8” and upload again.",
            field="file",
        ) from None
    if not text.strip():
        raise ValidationError("The file is empty.", field="file")
    return text


def _separator(text: str) -> str:
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    counts = {sep: first_line.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _is_header(cells: list[str]) -> bool:
    keys = [column_key(c) for c in cells]
    if any(k in KNOWN_NAMES for k in keys):
        return True
    if any(_FIVE_DIGITS.search(c) for c in cells):
        return False  # a phone number (valid or not) on the first row: it is data
    return any(any(ch.isalpha() for ch in c) for c in cells)


def _column_names(cells: list[str]) -> list[str]:
    names: list[str] = []
    for index, cell in enumerate(cells, start=1):
        name = cell.strip()[:64] or f"column {index}"
        base, n = name, 2
        while name in names:
            name = f"{base} ({n})"
            n += 1
        names.append(name)
    return names


def _find(keys: list[str], wanted: set[str]) -> int | None:
    return next((i for i, k in enumerate(keys) if k in wanted), None)


def read_csv(
    content: bytes,
    *,
    purpose: UploadPurpose | str = UploadPurpose.CONTACT_IMPORT,
    max_rows: int,
    keep_rows: bool = True,
) -> CsvTable:
    """Decode and split a CSV file, find its header and columns; ValidationError for a bad file.

    Blank rows are skipped. With `keep_rows=False` the rows are only counted (a quick check
    before a file is accepted).
    """
    text = decode_csv(content)
    separator = _separator(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    table: CsvTable | None = None
    width = 0
    try:
        for number, cells in enumerate(reader, start=1):
            if not "".join(cells).strip():
                continue  # a blank row
            if table is None:
                has_header = _is_header(cells)
                width = len(cells)
                names = _column_names(cells if has_header else [""] * width)
                keys = [column_key(n) for n in names] if has_header else []
                phone_index = _find(keys, PHONE_NAMES)
                table = CsvTable(
                    columns=names,
                    has_header=has_header,
                    separator=separator,
                    phone_index=0 if phone_index is None else phone_index,
                    message_index=_find(keys, MESSAGE_NAMES),
                    name_index=_find(keys, NAME_NAMES),
                    email_index=_find(keys, EMAIL_NAMES),
                    zip_index=_find(keys, ZIP_NAMES),
                )
                if has_header:
                    continue
            table.row_count += 1
            if table.row_count > max_rows:
                raise ValidationError(
                    f"The file has more than {max_rows:,} rows. Split it into smaller files.",
                    field="file",
                )
            if keep_rows:
                if len(cells) < width:
                    cells = cells + [""] * (width - len(cells))
                table.rows.append((number, cells))
    except csv.Error as exc:
        raise ValidationError(
            f"Row {reader.line_num:,} could not be read ({exc}). Check its quotes.", field="file"
        ) from None
    if table is None:
        raise ValidationError("The file is empty.", field="file")
    if table.row_count == 0:
        raise ValidationError("The file has a header row but no data rows.", field="file")
    if UploadPurpose(purpose) is UploadPurpose.PERSONALIZED and table.message_index is None:
        raise ValidationError(
            "No message column: name one column “message” (one text per row).", field="file"
        )
    return table


@dataclass(slots=True)
class ValidRow:
    row_number: int
    phone: str
    name: str | None
    email: str | None
    zip_code: str | None
    message: str | None
    attributes: dict[str, str]  # the columns that are not phone, name, email, zip or message
    data: dict[str, str]  # campaign uploads: every non-empty column but the phone (merge fields)


@dataclass(slots=True)
class RowIssue:
    row: int
    kind: str
    message: str
    value: str
    cells: list[str]
    first_row: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "row": self.row,
            "kind": self.kind,
            "message": self.message,
            "value": self.value,
            "first_row": self.first_row,
            "cells": self.cells,
        }


@dataclass
class Validation:
    valid: list[ValidRow]
    issues: list[RowIssue]
    total: int
    invalid: int = 0  # missing or invalid number, or missing message
    duplicates: int = 0
    field_notes: int = 0  # imported rows whose email or zip code was left out


def _cell(cells: list[str], index: int | None, limit: int) -> str | None:
    if index is None or index >= len(cells):
        return None
    value = cells[index].strip()
    return value[:limit] if value else None


def validate_rows(
    table: CsvTable,
    *,
    purpose: UploadPurpose | str = UploadPurpose.CONTACT_IMPORT,
    region: str = DEFAULT_REGION,
    zip_region: str = "",
    on_progress: Callable[[int], None] | None = None,
) -> Validation:
    """Check every row: number (to E.164), duplicates (with the first row), message if needed.
    A bad email or zip code (for `zip_region`: US, 5 digits or ZIP+4) is left out of the row,
    which is imported all the same, with a note saying what was left out and why."""
    personalized = UploadPurpose(purpose) is UploadPurpose.PERSONALIZED
    special = {
        i
        for i in (table.phone_index, table.name_index, table.email_index, table.zip_index)
        if i is not None
    } | ({table.message_index} if table.message_index is not None else set())
    names = table.columns
    extra = [(i, names[i]) for i in range(len(names)) if i not in special]
    # Merge fields are for campaign lists; a contact import keeps its columns on the contacts.
    keep_data = UploadPurpose(purpose) is not UploadPurpose.CONTACT_IMPORT
    data_columns = [(i, names[i]) for i in range(len(names)) if i != table.phone_index]
    data_columns = data_columns if keep_data else []
    seen: dict[str, int] = {}
    result = Validation(valid=[], issues=[], total=len(table.rows))
    # Bound once: this loop runs once per row of files of up to hundreds of thousands of rows.
    add_issue, add_valid = result.issues.append, result.valid.append
    phone_index, message_index = table.phone_index, table.message_index
    name_index, email_index, zip_index = table.name_index, table.email_index, table.zip_index
    for done, (number, cells) in enumerate(table.rows, start=1):
        if on_progress is not None and done % PROGRESS_EVERY == 0:
            on_progress(done)
        raw = cells[phone_index].strip() if phone_index < len(cells) else ""
        if not raw:
            add_issue(RowIssue(number, IssueKind.MISSING, "No phone number.", "", cells))
            result.invalid += 1
            continue
        phone = normalize_phone(raw, region)
        if phone is None:
            add_issue(
                RowIssue(number, IssueKind.INVALID, "Not a valid phone number.", raw[:100], cells)
            )
            result.invalid += 1
            continue
        first = seen.get(phone)
        if first is not None:
            add_issue(
                RowIssue(
                    number,
                    IssueKind.DUPLICATE,
                    f"Same number as row {first:,}.",
                    raw[:100],
                    cells,
                    first_row=first,
                )
            )
            result.duplicates += 1
            continue
        seen[phone] = number
        message = _cell(cells, message_index, 5000)
        if personalized and not message:
            add_issue(RowIssue(number, IssueKind.MISSING_MESSAGE, "No message.", raw[:100], cells))
            result.invalid += 1
            continue
        email = _cell(cells, email_index, 300)
        zip_code = _cell(cells, zip_index, 100)
        if email is not None or zip_code is not None:
            email, zip_code = _check_fields(number, email, zip_code, zip_region, cells, result)
        attributes = {}
        for i, name in extra:
            value = cells[i].strip() if i < len(cells) else ""
            if value:
                attributes[name] = value[:MAX_ATTRIBUTE_LENGTH]
        add_valid(
            ValidRow(
                row_number=number,
                phone=phone,
                name=_cell(cells, name_index, 200),
                email=email,
                zip_code=zip_code,
                message=message,
                attributes=attributes,
                data={
                    name: cells[i].strip()[:MAX_ATTRIBUTE_LENGTH]
                    for i, name in data_columns
                    if i < len(cells) and cells[i].strip()
                }
                if data_columns
                else {},
            )
        )
    if on_progress is not None:
        on_progress(len(table.rows))
    return result


def _check_fields(
    number: int,
    email: str | None,
    zip_code: str | None,
    zip_region: str,
    cells: list[str],
    result: Validation,
) -> tuple[str | None, str | None]:
    """The row's email and zip code as stored, None for one that is not valid (with a note)."""
    noted = False
    if email is not None:
        try:
            email = check_email(email)
        except FieldProblem as exc:
            message = f"{exc} Imported without the email."
            result.issues.append(RowIssue(number, IssueKind.BAD_EMAIL, message, email[:100], cells))
            email, noted = None, True
    if zip_code is not None:
        try:
            zip_code = check_zip_code(zip_code, zip_region)
        except FieldProblem as exc:
            message = f"{exc} Imported without the zip code."
            result.issues.append(RowIssue(number, IssueKind.BAD_ZIP, message, zip_code, cells))
            zip_code, noted = None, True
    result.field_notes += noted
    return email, zip_code


# --- staging: valid rows kept between validation and import, in PostgreSQL COPY text format ---

STAGED_COLUMNS = (
    "row_number",
    "phone",
    "name",
    "email",
    "zip_code",
    "message",
    "attributes",
    "data",
)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]").search
# One encoder, built once: json.dumps(..., ensure_ascii=False) builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False).encode
_UNESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _copy_field(value: str | None) -> str:
    if value is None:
        return "\\N"
    # Most cells have nothing to escape; the scan is cheaper than a translate per cell.
    return value.translate(_ESCAPES) if _NEEDS_ESCAPE(value) else value


def _json_field(value: dict[str, str]) -> str:
    return _copy_field(_JSON(value)) if value else "{}"


def encode_staged(rows: list[ValidRow]) -> bytes:
    """Valid rows as COPY text lines (tab-separated, `\\N` for NULL), one per row."""
    field, json_field = _copy_field, _json_field
    lines = [
        "\t".join(
            (
                str(r.row_number),
                r.phone,
                field(r.name),
                field(r.email),
                field(r.zip_code),
                field(r.message),
                json_field(r.attributes),
                json_field(r.data),
            )
        )
        for r in rows
    ]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def decode_staged(blob: bytes) -> Iterator[tuple[str | None, ...]]:
    """The staged rows back as tuples of STAGED_COLUMNS (strings, None for NULL)."""
    for line in blob.decode().split("\n"):
        if not line:
            continue
        yield tuple(
            None if f == "\\N" else _UNESCAPE.sub(lambda m: _UNESCAPED.get(m[1], m[1]), f)
            for f in line.split("\t")
        )
