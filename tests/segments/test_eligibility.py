"""SPEC 3.2: whatever a rule or a query says, unsubscribed, excluded and (for broadcasts)
upload-only contacts never come out of a resolution; raw SQL runs read-only with a timeout
(what raw SQL may read, and every escape tried, are in test_raw_sql.py and test_sql_guard.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Contact, ContactSource, ExcludeReason, Segment, utcnow
from app.segments.services import (
    Audience,
    check_raw_sql,
    clean_raw_sql,
    count_segment_contacts,
    resolve_segment_contact_ids,
)
from app.validation import ValidationError
from tests.factories import ContactFactory, SegmentFactory


@pytest.fixture
def crowd(app):
    """One contact of each kind, all in zip 48201."""
    made = dict(
        ok=ContactFactory(phone="+13135550201"),
        unsubscribed=ContactFactory(
            phone="+13135550202", unsubscribed=True, unsubscribed_at=utcnow()
        ),
        excluded=ContactFactory(
            phone="+13135550203", excluded=True, exclude_reason=ExcludeReason.MANUAL
        ),
        upload_only=ContactFactory(phone="+13135550204", source=ContactSource.UPLOAD),
    )
    db.session.flush()
    return made


RULES = [
    {"all": []},
    {"any": []},
    {"all": [{"type": "zip_code", "op": "in", "values": ["48201"]}]},
    {"any": [{"type": "never_received"}, {"type": "name", "op": "is_set"}]},
    {"all": [{"type": "not_replied_within_days", "days": 30}]},
]


@pytest.mark.parametrize("rule", RULES)
def test_rule_segments_never_resolve_to_ineligible_contacts(crowd, rule):
    segment = SegmentFactory(rule=rule)
    broadcast = resolve_segment_contact_ids(segment, purpose=Audience.BROADCAST)
    campaign = resolve_segment_contact_ids(segment, purpose=Audience.CAMPAIGN)
    assert broadcast == [crowd["ok"].id]
    assert campaign == sorted([crowd["ok"].id, crowd["upload_only"].id])
    assert count_segment_contacts(segment, purpose=Audience.BROADCAST) == 1
    assert count_segment_contacts(segment, purpose=Audience.CAMPAIGN) == 2


SQL_EVERYONE = "SELECT phone AS phone_number FROM contacts"


@pytest.mark.parametrize(
    "sql",
    [
        SQL_EVERYONE,
        SQL_EVERYONE + " WHERE unsubscribed OR excluded OR source = 'upload' OR true;",
        # The predecessor stored numbers without the plus sign.
        "SELECT substr(phone, 2) AS phone_number FROM contacts",
        "SELECT phone AS phone_number, 'x:y' AS note FROM contacts WHERE phone::text LIKE '+1%'",
    ],
)
def test_raw_sql_segments_are_intersected_with_eligible_contacts(crowd, sql):
    segment = SegmentFactory(rule={"all": []}, raw_sql=sql)
    assert resolve_segment_contact_ids(segment, purpose=Audience.BROADCAST) == [crowd["ok"].id]
    assert count_segment_contacts(segment, purpose=Audience.CAMPAIGN) == 2


def test_a_raw_sql_segment_that_writes_is_refused_and_changes_nothing(crowd):
    sql = "WITH gone AS (DELETE FROM contacts RETURNING phone AS phone_number) SELECT * FROM gone"
    with pytest.raises(ValidationError) as caught:
        check_raw_sql(sql)
    assert caught.value.field == "raw_sql"
    sql = "SELECT phone AS phone_number FROM contacts WHERE nextval('contacts_id_seq') > 0"
    with pytest.raises(ValidationError, match="function nextval is not allowed"):
        check_raw_sql(sql)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 4
    # The session is usable afterwards, and no longer read-only.
    ContactFactory(phone="+13135550299")
    db.session.flush()


def test_a_raw_sql_segment_that_takes_too_long_is_stopped(crowd, monkeypatch):
    monkeypatch.setattr("app.segments.services.RAW_SQL_TIMEOUT_MS", 200)
    with pytest.raises(ValidationError, match="took longer than"):
        check_raw_sql(
            "SELECT phone AS phone_number FROM contacts, generate_series(1, 100000000) AS n"
        )
    timeout = db.session.scalar(sa.text("SHOW statement_timeout"))
    assert timeout == "0"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT phone FROM contacts",
            "must return a column named phone_number (it returns: phone)",
        ),
        ("SELECT nothing FROM nowhere", "reads the table nowhere, which segments may not read"),
        ("SELECT phone AS phone_number FORM contacts", "does not parse"),
        ("SELECT 1 AS phone_number; DROP TABLE contacts", "single statement"),
        ("   ", "Enter a query"),
    ],
)
def test_raw_sql_segments_without_the_column_or_broken_are_refused(crowd, sql, message):
    with pytest.raises(ValidationError) as caught:
        check_raw_sql(sql)
    assert message in caught.value.message


def test_semicolons_inside_strings_are_fine():
    assert clean_raw_sql("SELECT ';' AS phone_number;  ") == "SELECT ';' AS phone_number"


def test_a_saved_raw_sql_segment_that_broke_later_raises_a_clear_error(crowd):
    # Saved before the allow list existed: checked again each time it runs.
    segment = Segment(name="Legacy", rule={"all": []}, raw_sql="SELECT phone_number FROM gone")
    db.session.add(segment)
    db.session.flush()
    with pytest.raises(ValidationError, match="reads the table gone"):
        resolve_segment_contact_ids(segment, purpose=Audience.BROADCAST)
