"""Zip codes and emails are checked where they enter: the rules, and the contact edit form."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from app.contacts.fields import FieldProblem, check_email, check_zip_code
from app.contacts.services import update_contact
from app.extensions import db
from app.models import AuditLog
from app.validation import ValidationError
from tests.factories import ContactFactory


@pytest.mark.parametrize(
    ("raw", "region", "stored"),
    [
        ("48201", "US", "48201"),
        (" 48201 ", "US", "48201"),
        ("48201-1234", "US", "48201-1234"),
        ("482011234", "US", "48201-1234"),
        ("48201 1234", "US", "48201-1234"),
        ("SW1A 1AA", "GB", "SW1A 1AA"),
        ("75008", "FR", "75008"),
        ("abc", "GB", "abc"),  # outside the US only the characters are checked
    ],
)
def test_good_zip_codes_are_stored_in_one_form(raw, region, stored):
    assert check_zip_code(raw, region) == stored


@pytest.mark.parametrize(
    ("raw", "region", "message"),
    [
        ("abc", "US", "“abc” is not a US zip code: use 5 digits (48201) or ZIP+4."),
        ("4820", "US", "not a US zip code"),
        ("482011", "US", "not a US zip code"),
        ("48201-12", "US", "not a US zip code"),
        ("SW1A 1AA", "US", "not a US zip code"),
        ("1234567890123", "GB", "at most 12 characters"),
        ("48201;drop", "", "use letters, digits and spaces"),
    ],
)
def test_bad_zip_codes_say_what_a_good_one_looks_like(raw, region, message):
    with pytest.raises(FieldProblem, match=re.escape(message)):
        check_zip_code(raw, region)


@pytest.mark.parametrize(
    "address",
    [
        "dwayne@example",
        "ana@localhost",
        "ana@@example.org",
        "ana example@example.org",
        "ana..b@example.org",
        ".ana@example.org",
        "ana@-example.org",
        "ana@example.test",
        "@example.org",
        "ana@",
    ],
)
def test_bad_emails_are_refused_with_the_reason(address):
    with pytest.raises(FieldProblem, match="is not an email address"):
        check_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "ana@example.org",
        "Ana.Stone+news@Example.ORG",
        "o'brien@example.co.uk",
        "ana_b%x@sub-domain.example.org",
        "jose@correo.es",
        "josé@exämple.org",
        "chloé12@example.org",
        "Ünal.Öz@example.de",
        "jose\u0301@example.org",  # not in NFC: the full check normalises it
        "٣٤@example.org",
        "a_b@example.org",
        "ana@example.arpa",
        "x@y.io",
        "a" * 64 + "@example.org",
    ],
)
def test_the_quick_path_agrees_with_email_validator(address):
    """The plain-address shortcut accepts only what email-validator accepts, stored the same."""
    try:
        expected = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        with pytest.raises(FieldProblem):
            check_email(address)
    else:
        assert check_email(address) == expected


def test_dwayne_at_example_is_refused_by_the_edit_form_and_nothing_changes(operator_client):
    contact = ContactFactory(name="Dwayne", email=None, zip_code=None)
    db.session.commit()
    response = operator_client.post(
        f"/contacts/{contact.id}",
        data={"name": "Dwayne Ray", "email": "dwayne@example", "zip_code": "48201"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "“dwayne@example” is not an email address" in html
    assert "It should have a period." in html
    assert 'aria-invalid="true"' in html
    db.session.refresh(contact)
    assert (contact.name, contact.email, contact.zip_code) == ("Dwayne", None, None)
    edits = sa.select(sa.func.count()).where(AuditLog.action == "contact_update")
    assert db.session.scalar(edits) == 0


def test_a_zip_of_abc_is_refused_by_the_edit_form_and_nothing_changes(operator_client):
    contact = ContactFactory(name="Ava", email=None, zip_code="48226")
    db.session.commit()
    response = operator_client.post(
        f"/contacts/{contact.id}",
        data={"name": "Ava Stone", "email": "ava@example.org", "zip_code": "abc"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "“abc” is not a US zip code: use 5 digits (48201) or ZIP+4." in html
    db.session.refresh(contact)
    assert (contact.name, contact.email, contact.zip_code) == ("Ava", None, "48226")


def test_good_values_are_saved_in_their_stored_form(operator_client):
    contact = ContactFactory(email=None, zip_code=None)
    db.session.commit()
    response = operator_client.post(
        f"/contacts/{contact.id}",
        data={"email": "Ava@Example.ORG", "zip_code": "482011234"},
    )
    assert response.status_code == 302
    db.session.refresh(contact)
    assert (contact.email, contact.zip_code) == ("Ava@example.org", "48201-1234")


def test_outside_the_us_a_postcode_with_letters_is_a_zip_code():
    contact = ContactFactory(zip_code=None)
    update_contact(
        contact,
        name="",
        email="",
        zip_code="SW1A 1AA",
        attributes_text="",
        user=None,
        zip_region="GB",
    )
    assert contact.zip_code == "SW1A 1AA"
    with pytest.raises(ValidationError) as refused:
        update_contact(
            contact,
            name="",
            email="",
            zip_code="SW1A 1AA",
            attributes_text="",
            user=None,
            zip_region="US",
        )
    assert refused.value.field == "zip_code"


@settings(max_examples=300, deadline=None)
@given(
    local=st.text(
        st.characters(categories=("L", "N", "M"), include_characters="._%+'-"),
        min_size=1,
        max_size=70,
    ),
    domain=st.sampled_from(["example.org", "Sub.Example.CO.uk", "x.io", "a-b.test", "b.arpa"]),
)
def test_the_quick_path_never_accepts_what_email_validator_refuses(local, domain):
    address = f"{local}@{domain}"
    try:
        expected = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        with pytest.raises(FieldProblem):
            check_email(address)
    else:
        assert check_email(address) == expected
