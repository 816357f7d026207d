"""The segments-and-labels grammar on crafted data: OR of AND groups, label since dates, a label
removed and applied again, exclude subtraction, one row per contact, raw SQL segments, and a
clear refusal for every malformed shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.campaigns.targeting import (
    describe_targeting,
    exclude_clause,
    segments_select,
    validate_targeting,
)
from app.extensions import db
from app.models import Contact, ContactSource, MissiveConversationLabel
from app.validation import ValidationError
from tests.factories import (
    ContactFactory,
    MissiveConversationFactory,
    MissiveLabelFactory,
    SegmentFactory,
    label_contact,
)

ZONE = "America/Detroit"
DETROIT = ZoneInfo(ZONE)
NOW = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)


def zip_segment(*zips: str, name: str | None = None):
    rule = {"all": [{"type": "zip_code", "op": "in", "values": list(zips)}]}
    return SegmentFactory(rule=rule, **({"name": name} if name else {}))


def seg(segment) -> dict:
    return {"type": "segment", "segment_id": segment.id}


def lab(label, since: str | None = None) -> dict:
    return {"type": "label", "label_id": label.id, "since": since}


def reached(include, exclude=(), *, now: datetime = NOW) -> set[int]:
    """The ids the compiled targeting selects, checking that none comes out twice."""
    targeting = validate_targeting({"include": list(include), "exclude": list(exclude)})
    ids = list(db.session.scalars(segments_select(targeting, now=now, zone=ZONE)))
    assert len(ids) == len(set(ids)), "a contact came out twice"
    return set(ids)


def ids(*contacts: Contact) -> set[int]:
    return {c.id for c in contacts}


@pytest.fixture
def town(app):
    """Contacts in three zip codes; a Voters and a Donors label on some of them."""
    people = {
        "ava": ContactFactory(zip_code="48201"),
        "ben": ContactFactory(zip_code="48201"),
        "cleo": ContactFactory(zip_code="48226"),
        "dev": ContactFactory(zip_code="48226"),
        "eli": ContactFactory(zip_code="48207"),
    }
    voters = MissiveLabelFactory(name="Voters")
    donors = MissiveLabelFactory(name="Donors")
    label_contact(people["ava"], voters)
    label_contact(people["cleo"], voters)
    label_contact(people["dev"], donors)
    label_contact(people["eli"], voters)
    label_contact(people["eli"], donors)
    db.session.flush()
    return {**people, "voters": voters, "donors": donors}


def test_include_groups_are_alternatives_and_conditions_in_a_group_must_all_hold(town):
    downtown, midtown = zip_segment("48201"), zip_segment("48226")
    t = town
    # One group of two conditions: both must hold.
    assert reached([[seg(midtown), lab(t["voters"])]]) == ids(t["cleo"])
    # Two groups: either will do.
    assert reached([[seg(downtown)], [lab(t["donors"])]]) == ids(
        t["ava"], t["ben"], t["dev"], t["eli"]
    )
    # AND inside, OR between.
    assert reached([[seg(downtown), lab(t["voters"])], [seg(midtown), lab(t["donors"])]]) == ids(
        t["ava"], t["dev"]
    )


def test_a_contact_matched_by_several_groups_is_one_recipient(town):
    t = town
    everyone = SegmentFactory(rule={"all": []})
    groups = [[seg(everyone)], [lab(t["voters"])], [lab(t["donors"])], [lab(t["voters"])]]
    assert reached(groups) == ids(t["ava"], t["ben"], t["cleo"], t["dev"], t["eli"])


def test_exclude_groups_are_subtracted(town):
    t = town
    everyone = SegmentFactory(rule={"all": []})
    assert reached([[seg(everyone)]], [[lab(t["voters"])]]) == ids(t["ben"], t["dev"])
    # Exclude groups are alternatives too; an AND group excludes only who matches all of it.
    assert reached([[seg(everyone)]], [[lab(t["voters"]), lab(t["donors"])]]) == ids(
        t["ava"], t["ben"], t["cleo"], t["dev"]
    )
    assert reached([[seg(everyone)]], [[lab(t["voters"])], [lab(t["donors"])]]) == ids(t["ben"])
    # Subtracting everybody leaves nobody, not an error.
    assert reached([[lab(t["voters"])]], [[seg(everyone)]]) == set()


def test_an_exclude_rule_that_cannot_tell_about_a_contact_does_not_subtract_them(town):
    # SQL's NULL: a contact without the attribute (or without a zip code) neither matches nor
    # fails to match a leave-out rule on it; they must stay in, not vanish with NOT NULL.
    t = town
    everyone = SegmentFactory(rule={"all": []})
    skip = SegmentFactory(
        rule={"all": [{"type": "attribute", "key": "flow", "op": "equals", "value": "skip"}]}
    )
    skipped = ContactFactory(zip_code="48201", attributes={"flow": "skip"})
    no_zip = ContactFactory(zip_code=None)
    db.session.flush()
    people = ids(t["ava"], t["ben"], t["cleo"], t["dev"], t["eli"], no_zip)
    assert reached([[seg(everyone)]], [[seg(skip)]]) == people
    assert reached([[seg(everyone)]], [[seg(zip_segment("48207"))]]) == (
        people | ids(skipped)
    ) - ids(t["eli"])


def test_label_since_means_applied_on_or_after_that_day_in_the_org_zone(app):
    label = MissiveLabelFactory()
    # The day starts at midnight in Detroit (05:00 UTC that day), not at midnight UTC.
    day_start = datetime(2026, 3, 1, 0, 0, tzinfo=DETROIT)
    before = ContactFactory()
    on_the_day = ContactFactory()
    later = ContactFactory()
    label_contact(before, label, applied_at=day_start - timedelta(minutes=1))
    label_contact(on_the_day, label, applied_at=day_start)
    label_contact(later, label, applied_at=day_start + timedelta(days=5))
    assert reached([[lab(label, "2026-03-01")]]) == ids(on_the_day, later)
    assert reached([[lab(label)]]) == ids(before, on_the_day, later)
    assert reached([[lab(label, "2026-03-07")]]) == set()


def test_a_removed_label_no_longer_matches_and_applied_again_it_matches_from_its_new_date(app):
    label = MissiveLabelFactory()
    contact = ContactFactory()
    link = label_contact(
        contact, label, applied_at=datetime(2026, 1, 5, 15, 0, tzinfo=UTC), removed=True
    )
    assert reached([[lab(label)]]) == set()
    # Applied again (as the Missive mirror does it): active, with a new last_applied_at.
    link.removed, link.removed_at = False, None
    link.last_applied_at = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    db.session.flush()
    assert reached([[lab(label)]]) == ids(contact)
    assert reached([[lab(label, "2026-03-01")]]) == ids(contact)  # the new date counts
    assert reached([[lab(label, "2026-03-05")]]) == set()
    # The first time it was applied does not make it match an earlier since date twice over,
    # nor does a removal keep matching.
    link.removed = True
    db.session.flush()
    assert reached([[lab(label, "2026-01-01")]]) == set()


def test_a_label_on_any_of_a_contacts_conversations_counts_once(app):
    label = MissiveLabelFactory()
    contact = ContactFactory()
    label_contact(contact, label)
    second = MissiveConversationFactory(contact=contact)
    db.session.add(MissiveConversationLabel(conversation_id=second.id, label_id=label.id))
    db.session.flush()
    assert reached([[lab(label)]]) == ids(contact)


def test_unsubscribed_and_excluded_contacts_never_come_out_but_upload_only_ones_do(app):
    everyone = SegmentFactory(rule={"all": []})
    kept = ContactFactory()
    from_upload = ContactFactory(source=ContactSource.UPLOAD)
    ContactFactory(unsubscribed=True)
    ContactFactory(excluded=True)
    assert reached([[seg(everyone)]]) == ids(kept, from_upload)


def test_a_raw_sql_segment_is_one_condition_like_any_other(town):
    t = town
    raw = SegmentFactory(
        rule={"all": []},
        raw_sql="SELECT phone AS phone_number FROM contacts WHERE zip_code = '48226'",
    )
    t["dev"].unsubscribed = True  # eligibility is applied to raw SQL too
    db.session.flush()
    assert reached([[seg(raw)]]) == ids(t["cleo"])
    assert reached([[seg(raw), lab(t["voters"])], [lab(t["donors"])]]) == ids(t["cleo"], t["eli"])
    everyone = SegmentFactory(rule={"all": []})
    assert reached([[seg(everyone)]], [[seg(raw)]]) == ids(t["ava"], t["ben"], t["eli"])


def test_a_raw_sql_segment_that_fails_is_a_validation_error_on_the_targeting(town):
    broken = SegmentFactory(rule={"all": []}, raw_sql="SELECT phone AS phone_number FROM contacts")
    targeting = validate_targeting({"include": [[seg(broken)]]})
    broken.raw_sql = "SELECT no_such_column AS phone_number FROM contacts"
    db.session.flush()
    with pytest.raises(ValidationError, match="no_such_column"):
        list(db.session.scalars(segments_select(targeting, now=NOW, zone=ZONE)))


def test_a_segment_deleted_after_checking_is_a_validation_error_when_compiled(town):
    gone = zip_segment("48201")
    targeting = validate_targeting({"include": [[seg(gone)]]})
    db.session.delete(gone)
    db.session.flush()
    with pytest.raises(ValidationError, match=f"Segment {gone.id} does not exist") as caught:
        segments_select(targeting, now=NOW, zone=ZONE)
    assert caught.value.field == "targeting"


def test_the_exclude_clause_alone_is_what_the_engine_checks_at_claim_time(town):
    t = town
    targeting = validate_targeting(
        {"include": [[seg(SegmentFactory(rule={"all": []}))]], "exclude": [[lab(t["donors"])]]}
    )
    clause = exclude_clause(targeting, now=NOW, zone=ZONE)
    matched = set(db.session.scalars(sa.select(Contact.id).where(clause)))
    assert matched == ids(t["dev"], t["eli"])
    assert exclude_clause({**targeting, "exclude": []}, now=NOW, zone=ZONE) is None


def test_validation_gives_the_canonical_form(town):
    t = town
    segment = zip_segment("48201")
    checked = validate_targeting(
        {
            "include": [[{"type": "segment", "segment_id": str(segment.id)}]],
            "exclude": [[{"type": "label", "label_id": t["voters"].id, "since": " 2026-03-01 "}]],
        }
    )
    assert checked == {
        "include": [[{"type": "segment", "segment_id": segment.id}]],
        "exclude": [[{"type": "label", "label_id": t["voters"].id, "since": "2026-03-01"}]],
    }
    blank_since = validate_targeting({"include": [[{**lab(t["voters"]), "since": ""}]]})
    assert blank_since["include"][0][0]["since"] is None
    assert validate_targeting({"include": [[seg(segment)]], "exclude": None})["exclude"] == []


@pytest.mark.parametrize(
    ("targeting", "message"),
    [
        ([], "Targeting is"),
        ("everyone", "Targeting is"),
        ({"include": "x"}, "Include must be a list of groups"),
        ({"include": [["x"]], "exclude": {"a": 1}}, "Include group 1, condition 1: a condition is"),
        ({"include": [[]]}, "Include group 1: add a segment or a label"),
        ({"include": ["segment"]}, "Include group 1: a group is a list of conditions"),
        (
            {"include": [[{"type": "zip"}]]},
            "Include group 1, condition 1: unknown condition type 'zip'",
        ),
        ({"include": [[{"type": "segment"}]]}, "Include group 1, condition 1: choose a segment"),
        ({"include": [[{"type": "segment", "segment_id": 0}]]}, "condition 1: choose a segment"),
        ({"include": [[{"type": "segment", "segment_id": -3}]]}, "choose a segment"),
        ({"include": [[{"type": "segment", "segment_id": True}]]}, "choose a segment"),
        ({"include": [[{"type": "segment", "segment_id": "7a"}]]}, "choose a segment"),
        ({"include": [[{"type": "label", "label_id": None}]]}, "choose a label"),
        (
            {"include": [[{"type": "label", "label_id": 1, "since": "tomorrow"}]]},
            "'tomorrow' is not a date",
        ),
        (
            {"include": [[{"type": "label", "label_id": 1, "since": 20260301}]]},
            "must look like YYYY-MM-DD",
        ),
        ({"include": [], "exclude": []}, "Choose at least one segment or label"),
        ({"exclude": [[{"type": "label", "label_id": 1}]]}, "Choose at least one segment or label"),
        ({"include": [[{"type": "label", "label_id": 1}]] * 21}, "Include: at most 20 groups"),
        (
            {"include": [[{"type": "label", "label_id": 1}] * 21]},
            "Include group 1: at most 20 conditions",
        ),
        (
            {"include": [[{"type": "label", "label_id": 1}]], "exclude": [[], []]},
            "Exclude group 1: add a segment or a label",
        ),
        (
            {
                "include": [[{"type": "label", "label_id": 1}]],
                "exclude": [[{"type": "label", "label_id": 1}, {"type": "x"}]],
            },
            "Exclude group 1, condition 2: unknown condition type",
        ),
    ],
)
def test_every_malformed_shape_is_refused_naming_the_group_and_condition(app, targeting, message):
    with pytest.raises(ValidationError) as caught:
        validate_targeting(targeting)
    assert caught.value.field == "targeting"
    assert message in caught.value.message


def test_unknown_segments_and_labels_are_refused_by_id(town):
    real = zip_segment("48201")
    with pytest.raises(ValidationError, match=r"Segment 999999 does not exist") as caught:
        validate_targeting({"include": [[seg(real), {"type": "segment", "segment_id": 999999}]]})
    assert caught.value.field == "targeting"
    with pytest.raises(ValidationError, match=r"Label 888888 does not exist") as caught:
        validate_targeting(
            {"include": [[seg(real)]], "exclude": [[{"type": "label", "label_id": 888888}]]}
        )
    assert caught.value.field == "targeting"


def test_targeting_is_described_in_words_even_after_a_segment_is_deleted(town):
    t = town
    readers = zip_segment("48201", name="Readers")
    gone = zip_segment("48226")
    targeting = validate_targeting(
        {
            "include": [[seg(readers), lab(t["voters"], "2026-03-01")], [seg(gone)]],
            "exclude": [[lab(t["donors"])]],
        }
    )
    db.session.delete(gone)
    db.session.flush()
    assert describe_targeting(targeting) == {
        "include": [
            ["Segment Readers", "Label Voters since 2026-03-01"],
            [f"Segment #{gone.id} (deleted)"],
        ],
        "exclude": [["Label Donors"]],
    }
