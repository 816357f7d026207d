"""The rule compiler: every condition, nesting, and the checks that refuse a bad rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.models import (
    BroadcastStatus,
    Contact,
    Keyword,
    MissiveConversation,
    MissiveConversationLabel,
    MissiveLabel,
)
from app.segments.rules import describe_condition, validate_rule
from app.segments.services import Audience, count_rule_contacts, resolve_segment_contact_ids
from app.validation import ValidationError
from tests.factories import (
    BroadcastFactory,
    CampaignFactory,
    ContactFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
    SegmentFactory,
    UploadFactory,
)

NOW = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)


def matches(rule) -> set[str]:
    """Phones of the eligible (campaign) contacts a rule selects, as of NOW."""
    segment = SegmentFactory(rule=rule)
    ids = resolve_segment_contact_ids(segment, purpose=Audience.CAMPAIGN, now=NOW)
    return {db.session.get(Contact, i).phone for i in ids}


@pytest.fixture
def people(app):
    """Five contacts with different facts; their phones end in 0..4."""
    made = {
        name: ContactFactory(phone=f"+1313555010{i}", **fields)
        for i, (name, fields) in enumerate(
            [
                (
                    "ava",
                    dict(
                        name="Ava",
                        zip_code="48201",
                        email="ava@example.org",
                        attributes={"neighborhood": "Midtown"},
                    ),
                ),
                ("ben", dict(name=None, zip_code="48226", attributes={"neighborhood": "Corktown"})),
                ("cleo", dict(name="Cleo", zip_code=None, email=" ")),
                (
                    "dev",
                    dict(
                        name="Dev",
                        zip_code="48207",
                        created_at=datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
                    ),
                ),
                (
                    "eve",
                    dict(
                        name="Eve",
                        zip_code="48201",
                        created_at=datetime(2025, 12, 31, 12, 0, tzinfo=UTC),
                    ),
                ),
            ]
        )
    }
    db.session.flush()
    return made


def phones(people, *names):
    return {people[n].phone for n in names}


def test_an_empty_rule_matches_every_eligible_contact(people):
    assert matches({"all": []}) == phones(people, "ava", "ben", "cleo", "dev", "eve")


def test_zip_code_in_and_not_in(people):
    assert matches({"all": [{"type": "zip_code", "op": "in", "values": ["48201"]}]}) == phones(
        people, "ava", "eve"
    )
    rule = {"all": [{"type": "zip_code", "op": "not_in", "values": "48201, 48226"}]}
    assert matches(rule) == phones(people, "cleo", "dev")


def test_created_before_and_on_or_after_a_local_day(people):
    # Dev was added on Jan 10, Eve on Dec 31 (both 12:00 UTC, morning in Detroit).
    before = {"all": [{"type": "created_at", "op": "before", "value": "2026-01-10"}]}
    after = {"all": [{"type": "created_at", "op": "after", "value": "2026-01-10"}]}
    assert phones(people, "eve") == matches(before) - phones(people, "ava", "ben", "cleo")
    assert phones(people, "dev") <= matches(after) and people["eve"].phone not in matches(after)


def test_name_and_email_set_or_not(people):
    assert matches({"all": [{"type": "name", "op": "is_not_set"}]}) == phones(people, "ben")
    assert matches({"all": [{"type": "email", "op": "is_set"}]}) == phones(people, "ava")


def test_custom_attribute_equals_contains_and_is_set(people):
    equals = {"type": "attribute", "key": "neighborhood", "op": "equals", "value": "midtown"}
    contains = {"type": "attribute", "key": "neighborhood", "op": "contains", "value": "TOWN"}
    is_set = {"type": "attribute", "key": "neighborhood", "op": "is_set"}
    assert matches({"all": [equals]}) == phones(people, "ava")
    assert matches({"all": [contains]}) == phones(people, "ava", "ben")
    assert matches({"all": [is_set]}) == phones(people, "ava", "ben")
    percent = {"type": "attribute", "key": "neighborhood", "op": "contains", "value": "%"}
    assert matches({"all": [percent]}) == set()


def _label(people, who, *, applied, removed=False, name="Voters"):
    label = db.session.query(MissiveLabel).filter_by(name=name).one_or_none()
    if label is None:
        label = MissiveLabel(missive_id=f"lbl-{name}", name=name)
        db.session.add(label)
    conversation = MissiveConversation(missive_id=f"conv-{who}-{name}", contact=people[who])
    db.session.add(conversation)
    db.session.add(
        MissiveConversationLabel(
            conversation=conversation,
            label=label,
            first_applied_at=applied,
            last_applied_at=applied,
            removed=removed,
        )
    )
    db.session.flush()
    return label


def test_has_label_with_and_without_since_ignores_removed_labels(people):
    label = _label(people, "ava", applied=NOW - timedelta(days=3))
    _label(people, "ben", applied=NOW - timedelta(days=40))
    _label(people, "cleo", applied=NOW - timedelta(days=1), removed=True)
    _label(people, "dev", applied=NOW, name="Other")
    assert matches({"all": [{"type": "has_label", "label_id": label.id}]}) == phones(
        people, "ava", "ben"
    )
    since = (NOW - timedelta(days=10)).date().isoformat()
    rule = {"all": [{"type": "has_label", "label_id": label.id, "since": since}]}
    assert matches(rule) == phones(people, "ava")


def test_a_label_removed_then_applied_again_counts_from_its_new_application(people):
    label = _label(people, "ava", applied=NOW - timedelta(days=60), removed=True)
    link = db.session.query(MissiveConversationLabel).one()
    rule = {"all": [{"type": "has_label", "label_id": label.id, "since": "2026-06-01"}]}
    assert matches(rule) == set()
    link.removed, link.last_applied_at = False, NOW - timedelta(days=2)
    db.session.flush()
    assert matches(rule) == phones(people, "ava")


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def test_replied_and_not_replied_within_days_ignore_keywords(people):
    InboundMessageFactory(contact=people["ava"], received_at=days_ago(2))
    InboundMessageFactory(contact=people["ben"], received_at=days_ago(20))
    InboundMessageFactory(
        contact=people["cleo"], received_at=days_ago(1), body="HELP", keyword=Keyword.HELP
    )
    replied = {"all": [{"type": "replied_within_days", "days": 7}]}
    assert matches(replied) == phones(people, "ava")
    assert matches({"all": [{"type": "replied_within_days", "days": "30"}]}) == phones(
        people, "ava", "ben"
    )
    not_replied = {"all": [{"type": "not_replied_within_days", "days": 7}]}
    assert matches(not_replied) == phones(people, "ben", "cleo", "dev", "eve")


def test_received_within_days_from_any_send_or_broadcasts_only_and_never_received(people):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENT)
    campaign = CampaignFactory()
    ava, ben, cleo, dev = (people[name] for name in ("ava", "ben", "cleo", "dev"))
    OutboundMessageFactory(contact=ava, broadcast=broadcast, delivered=True, sent_at=days_ago(1))
    OutboundMessageFactory(contact=ben, campaign=campaign, delivered=True, sent_at=days_ago(2))
    OutboundMessageFactory(contact=cleo, broadcast=broadcast, failed=True, sent_at=days_ago(1))
    OutboundMessageFactory(contact=dev, broadcast=broadcast, delivered=True, sent_at=days_ago(50))
    assert matches({"all": [{"type": "received_within_days", "days": 7}]}) == phones(
        people, "ava", "ben"
    )
    only = {"all": [{"type": "received_within_days", "days": 7, "broadcasts_only": True}]}
    assert matches(only) == phones(people, "ava")
    assert matches({"all": [{"type": "never_received"}]}) == phones(people, "cleo", "eve")


def test_in_upload(people):
    upload = UploadFactory(contacts=[people["dev"]])
    assert matches({"all": [{"type": "in_upload", "upload_id": upload.id}]}) == phones(
        people, "dev"
    )


def test_nested_any_and_all_groups(people):
    rule = {
        "any": [
            {
                "all": [
                    {"type": "zip_code", "op": "in", "values": ["48201"]},
                    {"type": "name", "op": "is_set"},
                    {"type": "created_at", "op": "after", "value": "2026-01-01"},
                ]
            },
            {
                "all": [
                    {"type": "zip_code", "op": "in", "values": ["48226"]},
                    {
                        "any": [
                            {"type": "name", "op": "is_set"},
                            {
                                "type": "attribute",
                                "key": "neighborhood",
                                "op": "equals",
                                "value": "Corktown",
                            },
                        ]
                    },
                ]
            },
        ]
    }
    # Ava (48201, named, added "now") and Ben (48226, Corktown); not Eve (added in 2025).
    assert matches(rule) == phones(people, "ava", "ben")


def test_empty_groups_are_ignored_wherever_they_are(people):
    rule = {"any": [{"type": "zip_code", "op": "in", "values": ["48207"]}, {"all": []}]}
    assert matches(rule) == phones(people, "dev")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ([], "a rule is"),
        ({"all": [], "any": []}, "a group is"),
        ({"all": "x"}, "must hold a list"),
        ({"all": [{"type": "nope"}]}, "The first condition: unknown condition type"),
        ({"all": [{"type": "zip_code", "values": []}]}, "enter at least one zip code"),
        ({"all": [{"type": "zip_code", "op": "like", "values": ["1"]}]}, "unknown comparison"),
        ({"all": [{"type": "created_at", "op": "before", "value": "31/12/2025"}]}, "not a date"),
        ({"all": [{"type": "replied_within_days", "days": "abc"}]}, "must be a number"),
        ({"all": [{"type": "replied_within_days", "days": 0}]}, "choose a number of days"),
        ({"all": [{"type": "replied_within_days", "days": 99999}]}, "at most 3,650"),
        ({"all": [{"type": "has_label"}]}, "choose a label"),
        ({"all": [{"type": "attribute", "op": "equals", "key": "k"}]}, "enter the value"),
        ({"all": [{"all": [{"any": [{"all": [{"all": []}]}]}]}]}, "nest at most"),
        (
            {"any": [{"all": [{"type": "in_upload", "upload_id": True}]}]},
            "The first condition (upload) of the first group: choose an upload.",
        ),
    ],
)
def test_bad_rules_are_refused_with_a_message_naming_the_condition(app, rule, message):
    with pytest.raises(ValidationError) as caught:
        validate_rule(rule)
    assert message in caught.value.message and caught.value.field == "rule"


def test_too_many_conditions_are_refused(app):
    rule = {"all": [{"type": "never_received"}] * 51}
    with pytest.raises(ValidationError, match="at most 50 conditions"):
        validate_rule(rule)


def test_descriptions_read_as_sentences(app):
    assert describe_condition({"type": "zip_code", "op": "in", "values": ["1", "2"]}) == (
        "Zip code is one of 1, 2"
    )
    assert (
        describe_condition(
            {"type": "has_label", "label_id": 3, "since": "2026-01-01"}, {3: "Voters"}
        )
        == "Has label Voters since 2026-01-01"
    )


def test_counting_agrees_with_resolving(people):
    rule = {"all": [{"type": "zip_code", "op": "in", "values": ["48201", "48226"]}]}
    segment = SegmentFactory(rule=rule)
    for purpose in Audience:
        ids = resolve_segment_contact_ids(segment, purpose=purpose, now=NOW)
        assert count_rule_contacts(rule, purpose=purpose, now=NOW) == len(ids) == 3
