"""Campaign services: every field's bad input refused by name with nothing written, drafts and
scheduled campaigns, the edit/delete/unschedule rules, the estimate agreeing with the start for
each kind, eligibility for each kind, the Missive label, and the confirmation's figures."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.campaigns.services import (
    CampaignInput,
    check_campaign,
    delete_campaign,
    estimate,
    label_preview,
    merge_issues,
    preview_campaign,
    save_campaign,
    start_campaign,
    unschedule_campaign,
)
from app.extensions import db
from app.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    ContactSource,
    OutboundMessage,
    UploadPurpose,
    UploadStatus,
    utcnow,
)
from app.validation import ValidationError
from tests.campaigns.builders import (
    ZONE,
    everyone,
    lab,
    list_input,
    list_upload,
    personalized_input,
    personalized_upload,
    seg,
    segments_input,
)
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MissiveLabelFactory,
    SegmentFactory,
    UploadFactory,
    UserFactory,
    label_contact,
)

DETROIT = ZoneInfo(ZONE)
WINDOW = (time(9, 0), time(20, 0))


def campaigns() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Campaign))


def rows_of(campaign: Campaign) -> dict[int, str]:
    """contact id → body of the campaign's first messages."""
    return dict(
        db.session.execute(
            sa.select(OutboundMessage.contact_id, OutboundMessage.body).where(
                OutboundMessage.campaign_id == campaign.id
            )
        ).all()
    )


def schedule(values: CampaignInput, user=None) -> Campaign:
    campaign = save_campaign(None, values, schedule=True, user=user, now=utcnow(), zone=ZONE)
    db.session.commit()
    return campaign


def start(campaign: Campaign) -> Campaign:
    started = start_campaign(campaign.id, now=utcnow(), zone=ZONE)
    assert started is not None
    return started


@pytest.fixture
def people(app):
    """Eligible people (one known only from an upload), an unsubscribed and an excluded one."""
    return {
        "ava": ContactFactory(name="Ava"),
        "ben": ContactFactory(name="Ben"),
        "upl": ContactFactory(name="Una", source=ContactSource.UPLOAD),
        "unsub": ContactFactory(name="Uri", unsubscribed=True),
        "excl": ContactFactory(name="Eve", excluded=True),
    }


def eligible(people) -> set[int]:
    return {people[k].id for k in ("ava", "ben", "upl")}


# -- bad input, field by field -----------------------------------------------------------------
def _bad_inputs(people):
    segment = everyone()
    good = segments_input([[seg(segment)]])
    contact_import = UploadFactory(done=True, purpose=UploadPurpose.CONTACT_IMPORT)
    pending = UploadFactory(purpose=UploadPurpose.CAMPAIGN_LIST, status=UploadStatus.VALIDATING)
    checked = UploadFactory(purpose=UploadPurpose.CAMPAIGN_LIST, status=UploadStatus.VALIDATED)
    failed = UploadFactory(
        purpose=UploadPurpose.CAMPAIGN_LIST, status=UploadStatus.FAILED, error_message="not a CSV"
    )
    numbers = list_upload([people["ava"]])
    personal = personalized_upload([(people["ava"], {"First Name": "Ava", "Place": "Library"})])
    now = utcnow()

    def like(base: CampaignInput, **changes) -> CampaignInput:
        return CampaignInput(**{**base.__dict__, **changes})

    personal_good = personalized_input(personal)
    return [
        (like(good, title="x" * 201), "title", "at most 200 characters"),
        (like(good, target_kind="everyone"), "target_kind", "Choose who receives it"),
        (like(good, targeting={"include": []}), "targeting", "at least one segment or label"),
        (like(good, targeting={"include": [[{"type": "x"}]]}), "targeting", "Include group 1"),
        (
            like(good, targeting={"include": [[{"type": "segment", "segment_id": 10**20}]]}),
            "targeting",
            "condition 1: no segment has the id 1000",
        ),
        (list_input(numbers, upload_id=None), "upload_id", "Upload a CSV file first"),
        (list_input(numbers, upload_id="abc"), "upload_id", "Upload a CSV file first"),
        (list_input(numbers, upload_id="99999999999999999999"), "upload_id", "not a campaign"),
        (list_input(numbers, upload_id=contact_import.id), "upload_id", "not a campaign upload"),
        (list_input(numbers, upload_id=pending.id), "upload_id", "still being checked"),
        (list_input(numbers, upload_id=checked.id), "upload_id", "import its valid rows"),
        (list_input(numbers, upload_id=failed.id), "upload_id", "could not be read (not a CSV)"),
        (
            personalized_input(numbers, message_source="column"),
            "message_source",
            "no message column",
        ),
        (like(good, first_message="   "), "first_message", "Write the first message"),
        (like(good, first_message="Hi\x00"), "first_message", "NUL"),
        (like(good, first_message="x" * 1601), "first_message", "at most 1,600 characters"),
        (like(personal_good, first_message="Hi {nmae}"), "first_message", "not a column"),
        (like(personal_good, first_message="Hi {first name"), "first_message", "brace"),
        (
            like(personal_good, first_message="Your number {phone}"),
            "first_message",
            "not a column",
        ),
        (like(good, second_message="x" * 1601), "second_message", "at most 1,600"),
        (like(good, second_message="\x00"), "second_message", "NUL"),
        (
            like(personal_good, second_message="Thanks {first name}!"),
            "second_message",
            "only in the first message",
        ),
        (like(good, delay_seconds="ten"), "delay_seconds", "whole number"),
        (like(good, delay_seconds=-1), "delay_seconds", "cannot be negative"),
        (like(good, delay_seconds=True), "delay_seconds", "cannot be negative"),
        (like(good, delay_seconds=8 * 24 * 3600), "delay_seconds", "at most 7 days"),
        (like(good, missive_label_name="Elections/2026"), "missive_label_name", "“/”"),
        (like(good, missive_label_name="x" * 101), "missive_label_name", "at most 100"),
        (like(good, run_at=now - timedelta(minutes=1)), "run_at", "in the future"),
        (like(good, run_at=now + timedelta(days=61)), "run_at", "within the next 60 days"),
        (like(good, run_at=datetime(2030, 1, 1, 12, 0)), "run_at", "time zone"),
    ]


def test_every_field_refuses_bad_input_by_name_and_nothing_is_written(people):
    user = UserFactory()
    cases = _bad_inputs(people)
    db.session.commit()  # the uploads and segments stay; each refused save is rolled back
    before = campaigns()
    audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog))
    for values, field, message in cases:
        with pytest.raises(ValidationError) as caught:
            check_campaign(values, now=utcnow(), zone=ZONE)
        assert (caught.value.field, message in caught.value.message) == (field, True), (
            field,
            caught.value.message,
        )
        with pytest.raises(ValidationError):
            save_campaign(None, values, schedule=True, user=user, now=utcnow(), zone=ZONE)
        db.session.rollback()
    assert campaigns() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == audits


def test_a_personalized_follow_up_may_have_braces_only_as_plain_text(people):
    upload = personalized_upload([(people["ava"], {"First Name": "Ava", "Place": "Library"})])
    checked = check_campaign(
        personalized_input(upload, second_message="Reply YES :-}"), now=utcnow(), zone=ZONE
    )
    assert checked.second_message == "Reply YES :-}"


def test_check_campaign_gives_plain_values(people):
    checked = check_campaign(
        segments_input(
            [[seg(everyone())]],
            title="  Spring   survey ",
            delay_seconds="900",
            missive_label_name="  Spring  2026 ",
            second_message="  ",
        ),
        now=utcnow(),
        zone=ZONE,
    )
    assert checked.title == "Spring survey"
    assert checked.delay_seconds == 900
    assert checked.missive_label_name == "Spring 2026"
    assert checked.second_message is None
    assert checked.message_column is None and checked.upload_id is None


def test_a_personalized_campaign_from_the_message_column_keeps_no_first_message(people):
    upload = personalized_upload([(people["ava"], {"message": "Hi Ava"})])
    checked = check_campaign(
        personalized_input(upload, message_source="column", first_message="ignored"),
        now=utcnow(),
        zone=ZONE,
    )
    assert checked.message_column == "message" and checked.first_message == ""


# -- saving: drafts, scheduled, the rules once started -----------------------------------------
def test_a_draft_needs_no_run_time_and_scheduling_needs_one(people):
    user = UserFactory()
    values = segments_input([[seg(everyone())]], run_at=None)
    draft = save_campaign(None, values, schedule=False, user=user, now=utcnow(), zone=ZONE)
    db.session.commit()
    assert draft.status == CampaignStatus.DRAFT and draft.run_at is None
    assert draft.estimated_recipients == 3 and draft.created_by_id == user.id
    with pytest.raises(ValidationError) as caught:
        save_campaign(draft, values, schedule=True, user=user, now=utcnow(), zone=ZONE)
    assert caught.value.field == "run_at"
    db.session.rollback()
    assert db.session.get(Campaign, draft.id).status == CampaignStatus.DRAFT
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "campaign.create"))
    assert audit.object_id == str(draft.id) and "as a draft" in audit.summary


def test_send_now_schedules_it_a_minute_from_now(people):
    now = utcnow()
    campaign = save_campaign(
        None,
        segments_input([[seg(everyone())]], run_at=None, send_now=True),
        schedule=True,
        user=None,
        now=now,
        zone=ZONE,
    )
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.run_at == now + timedelta(minutes=1)


def test_a_scheduled_campaign_can_be_edited_unscheduled_and_deleted(people):
    user = UserFactory()
    campaign = schedule(segments_input([[seg(everyone())]], title="First"), user)
    edited = save_campaign(
        campaign,
        segments_input([[seg(everyone())]], title="Second", run_at=utcnow() + timedelta(days=3)),
        schedule=True,
        user=user,
        now=utcnow(),
        zone=ZONE,
    )
    db.session.commit()
    assert edited.id == campaign.id and edited.title == "Second"
    assert db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "campaign.update"))
    unschedule_campaign(campaign, user=user)
    db.session.commit()
    assert campaign.status == CampaignStatus.DRAFT
    with pytest.raises(ValidationError, match="Only a scheduled campaign"):
        unschedule_campaign(campaign, user=user)
    delete_campaign(campaign, user=user)
    db.session.commit()
    assert campaigns() == 0
    assert db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "campaign.delete"))


@pytest.mark.parametrize(
    "status", [CampaignStatus.SENDING, CampaignStatus.SENT, CampaignStatus.CANCELLED]
)
def test_a_started_campaign_is_read_only(people, status):
    campaign = CampaignFactory(status=status, started_at=utcnow(), title="Started")
    db.session.commit()
    values = segments_input([[seg(everyone())]], title="Changed")
    with pytest.raises(ValidationError, match="has started"):
        save_campaign(campaign, values, schedule=True, user=None, now=utcnow(), zone=ZONE)
    with pytest.raises(ValidationError, match="has started"):
        delete_campaign(campaign, user=None)
    with pytest.raises(ValidationError):
        unschedule_campaign(campaign, user=None)
    db.session.rollback()
    assert db.session.get(Campaign, campaign.id).title == "Started"


def test_an_edit_that_loses_the_race_with_the_start_is_refused(people):
    """The page loaded the campaign while it was scheduled; the tick's claim (the conditional
    update start_campaign runs) landed meanwhile. Edit, delete and unschedule must see the
    campaign as it is now, not as the page loaded it."""
    campaign = schedule(segments_input([[seg(everyone())]], title="Loaded"))
    attempts = [
        lambda: save_campaign(
            campaign,
            segments_input([[seg(everyone())]], title="Changed"),
            schedule=True,
            user=None,
            now=utcnow(),
            zone=ZONE,
        ),
        lambda: delete_campaign(campaign, user=None),
        lambda: unschedule_campaign(campaign, user=None),
    ]
    for attempt in attempts:
        assert campaign.status == CampaignStatus.SCHEDULED  # what the page loaded
        db.session.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.SCHEDULED)
            .values(status=CampaignStatus.SENDING, started_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        with pytest.raises(ValidationError):
            attempt()
        db.session.flush()
        row = db.session.execute(
            sa.select(Campaign.status, Campaign.title).where(Campaign.id == campaign.id)
        ).one()
        assert row == (CampaignStatus.SENDING, "Loaded")
        db.session.rollback()


# -- the Missive label -------------------------------------------------------------------------
def test_a_mirrored_label_is_found_case_insensitively_else_it_will_be_created(people):
    MissiveLabelFactory(name="Spring Survey", missive_id="lbl-spring")
    found = schedule(segments_input([[seg(everyone())]], missive_label_name="spring SURVEY"))
    assert found.label_state == "ready" and found.missive_label_ids == ["lbl-spring"]
    new = schedule(segments_input([[seg(everyone())]], missive_label_name="Autumn"))
    assert new.label_state == "pending" and new.missive_label_ids == []
    none = schedule(segments_input([[seg(everyone())]]))
    assert none.label_state is None and none.missive_label_ids == []
    assert label_preview("SPRING survey") == "exists"
    assert label_preview("Autumn") == "will be created"
    assert label_preview("   ") is None
    # Renaming the label starts over; keeping it keeps its state.
    found.label_attempts = 2
    save_campaign(
        found,
        segments_input([[seg(everyone())]], missive_label_name="spring SURVEY", title="x"),
        schedule=True,
        user=None,
        now=utcnow(),
        zone=ZONE,
    )
    assert found.label_attempts == 2 and found.label_state == "ready"
    save_campaign(
        found,
        segments_input([[seg(everyone())]], missive_label_name="Winter"),
        schedule=True,
        user=None,
        now=utcnow(),
        zone=ZONE,
    )
    assert (found.label_state, found.missive_label_ids, found.label_attempts) == (
        "pending",
        [],
        0,
    )


# -- who it reaches: the estimate is the start, for each kind ----------------------------------
def test_segments_estimate_equals_the_start_and_eligibility_holds(people):
    voters = MissiveLabelFactory()
    for key in ("ava", "ben", "upl", "unsub", "excl"):
        label_contact(people[key], voters)
    excluded_by_rule = MissiveLabelFactory()
    label_contact(people["ben"], excluded_by_rule)
    values = segments_input([[lab(voters)], [seg(everyone())]], [[lab(excluded_by_rule)]])
    guess = estimate(values, now=utcnow(), zone=ZONE)
    assert guess.error is None and guess.recipients == 2
    campaign = schedule(values)
    assert campaign.estimated_recipients == 2
    start(campaign)
    assert set(rows_of(campaign)) == {people["ava"].id, people["upl"].id}
    assert campaign.actual_recipients == guess.recipients


def test_uploaded_list_estimate_equals_the_start_and_eligibility_holds(people):
    upload = list_upload(list(people.values()))
    values = list_input(upload)
    guess = estimate(values, now=utcnow(), zone=ZONE)
    assert guess.recipients == 3
    campaign = start(schedule(values))
    assert set(rows_of(campaign)) == eligible(people)
    assert campaign.actual_recipients == 3
    assert set(rows_of(campaign).values()) == {"A note from the newsroom"}


def test_an_unsubscribed_contact_in_a_personalized_file_is_never_texted(people):
    """SPEC 9: the predecessor's personalized campaigns ignored unsubscribes."""
    upload = personalized_upload(
        [(people[k], {"First Name": people[k].name, "Place": "Library"}) for k in people]
    )
    values = personalized_input(upload)
    guess = estimate(values, now=utcnow(), zone=ZONE)
    assert (guess.recipients, guess.merge_issues) == (3, 0)
    campaign = start(schedule(values))
    bodies = rows_of(campaign)
    assert set(bodies) == eligible(people)
    assert bodies[people["upl"].id] == "Hi Una, vote at Library."
    assert campaign.actual_recipients == 3


def test_a_personalized_message_column_campaign_honours_eligibility_too(people):
    upload = personalized_upload(
        [(people[k], {"message": f"  Dear {people[k].name}  "}) for k in people]
        + [(ContactFactory(), {"message": ""})]  # a row without a message gets nothing
    )
    values = personalized_input(upload, message_source="column", first_message="")
    guess = estimate(values, now=utcnow(), zone=ZONE)
    assert guess.recipients == 3
    campaign = start(schedule(values))
    bodies = rows_of(campaign)
    assert set(bodies) == eligible(people)
    assert bodies[people["ava"].id] == "Dear Ava"
    assert campaign.actual_recipients == 3


def test_rows_missing_a_merge_field_get_no_message_and_are_listed(people):
    upload = personalized_upload(
        [
            (people["ava"], {"First Name": "Ava", "Place": "Library"}),
            (people["ben"], {"First Name": "Ben"}),  # no place
            (people["upl"], {"Place": "School"}),  # no name
            (people["unsub"], {"First Name": "Uri"}),  # not eligible: not an issue of this send
        ]
    )
    values = personalized_input(upload)
    guess = estimate(values, now=utcnow(), zone=ZONE)
    assert (guess.recipients, guess.merge_issues) == (1, 2)
    campaign = schedule(values)
    issues = merge_issues(campaign)
    assert issues.count == 2
    assert issues.rows == [
        {"row": 3, "phone": people["ben"].phone, "message": "no value for {Place}"},
        {"row": 4, "phone": people["upl"].phone, "message": "no value for {First Name}"},
    ]
    start(campaign)
    bodies = rows_of(campaign)
    assert bodies == {people["ava"].id: "Hi Ava, vote at Library."}
    assert not any("  " in b or " ," in b or b.endswith(" .") for b in bodies.values())


def test_a_text_longer_than_one_message_body_is_never_sent_and_is_listed(people):
    long_place = "x" * (1600 - len("Hi Ben, vote at .") + 1)  # renders to 1,601 characters
    fits = "y" * (1600 - len("Hi Ava, vote at ."))  # exactly 1,600
    upload = personalized_upload(
        [
            (people["ava"], {"First Name": "Ava", "Place": fits}),
            (people["ben"], {"First Name": "Ben", "Place": long_place}),
            (people["upl"], {"First Name": "Una", "Place": "School", "message": "z" * 1601}),
        ]
    )
    values = personalized_input(upload)
    guess = estimate(values, now=utcnow(), zone=ZONE)
    assert (guess.recipients, guess.merge_issues) == (2, 1)
    campaign = schedule(values)
    assert merge_issues(campaign).rows == [
        {
            "row": 3,
            "phone": people["ben"].phone,
            "message": "text too long (1,601 characters; a text can be at most 1,600)",
        }
    ]
    start(campaign)
    bodies = rows_of(campaign)
    assert set(bodies) == {people["ava"].id, people["upl"].id}
    assert len(bodies[people["ava"].id]) == 1600

    # Each row's own message column: the same rule, counted the same way.
    by_column = schedule(personalized_input(upload, message_source="column", first_message=""))
    assert (
        estimate(
            personalized_input(upload, message_source="column", first_message=""),
            now=utcnow(),
            zone=ZONE,
        ).recipients
        == 0
    )
    issues = merge_issues(by_column)
    assert [issue["message"][:22] for issue in issues.rows] == [
        "no message",
        "no message",
        "text too long (1,601 c",
    ]


def test_an_estimate_says_what_to_fix_instead_of_a_number(people):
    bad = estimate(
        segments_input([[{"type": "segment", "segment_id": 424242}]]), now=utcnow(), zone=ZONE
    )
    assert bad.recipients is None and "424242 does not exist" in bad.error
    # The rest of the form may still be empty while the target is chosen.
    upload = list_upload([people["ava"]])
    partial = estimate(list_input(upload, first_message="", run_at=None), now=utcnow(), zone=ZONE)
    assert partial.recipients == 1 and partial.error is None


# -- the confirmation --------------------------------------------------------------------------
def test_the_preview_counts_segments_for_gsm_and_ucs2_texts(people):
    gsm = schedule(
        segments_input([[seg(everyone())]], first_message="x" * 161, second_message="Hi?")
    )
    shown = preview_campaign(gsm, now=utcnow(), zone=ZONE, rate=1.0, window=None)
    assert shown.recipients == 3
    assert shown.first_segments == 2 * 3 and shown.follow_up_segments == 3
    assert shown.total_segments == 9
    assert shown.messages[0].encoding == "GSM-7" and shown.messages[0].segments == 2
    assert shown.duration_seconds == 6.0 and shown.warnings == []
    ucs2 = schedule(
        segments_input([[seg(everyone())]], first_message="Ça va? 🗳️", second_message="")
    )
    shown = preview_campaign(ucs2, now=utcnow(), zone=ZONE, rate=2.0, window=None)
    assert shown.messages[0].encoding == "UCS-2" and shown.messages[0].segments == 1
    assert "🗳" in "".join(shown.messages[0].non_gsm)
    assert (shown.first_segments, shown.follow_up_segments, shown.duration_seconds) == (3, 0, 1.5)


def test_a_personalized_preview_shows_rendered_rows_ucs2_rows_and_the_longest(people):
    upload = personalized_upload(
        [
            (people["ava"], {"First Name": "Ava", "Place": "the Library"}),
            (people["ben"], {"First Name": "Zoë", "Place": "Café Ünter"}),  # ë needs UCS-2
            (people["upl"], {"First Name": "Una", "Place": "Room " + "9" * 170}),
            (people["unsub"], {"First Name": "Uri", "Place": "x"}),
        ]
    )
    campaign = schedule(personalized_input(upload))
    shown = preview_campaign(campaign, now=utcnow(), zone=ZONE, rate=1.0, window=None)
    assert shown.recipients == 3
    assert [m.body for m in shown.messages] == [
        "Hi Ava, vote at the Library.",
        "Hi Zoë, vote at Café Ünter.",
        f"Hi Una, vote at Room {'9' * 170}.",
    ]
    assert shown.messages[0].label == people["ava"].phone
    assert shown.longest.body.startswith("Hi Una") and shown.longest.segments == 2
    assert shown.first_segments == sum(m.segments for m in shown.messages)
    assert [m.encoding for m in shown.messages] == ["GSM-7", "UCS-2", "GSM-7"]
    assert shown.ucs2_rows == 1
    assert shown.follow_up_segments == 0


def _local(day_offset: int, at: time) -> datetime:
    today = utcnow().astimezone(DETROIT).date()
    return datetime.combine(today + timedelta(days=day_offset), at, tzinfo=DETROIT)


def test_the_preview_warns_when_starting_in_quiet_hours(people):
    campaign = schedule(segments_input([[seg(everyone())]], run_at=_local(1, time(3, 30))))
    shown = preview_campaign(campaign, now=utcnow(), zone=ZONE, rate=1.0, window=WINDOW)
    assert len(shown.warnings) == 1
    assert "It is 3:30 AM in Detroit" in shown.warnings[0] and "9:00 AM" in shown.warnings[0]
    calm = schedule(segments_input([[seg(everyone())]], run_at=_local(1, time(12, 0))))
    shown = preview_campaign(calm, now=utcnow(), zone=ZONE, rate=1.0, window=WINDOW)
    assert shown.warnings == []
    off = preview_campaign(campaign, now=utcnow(), zone=ZONE, rate=1.0, window=None)
    assert off.warnings == []


def test_the_preview_warns_when_sending_runs_past_the_end_of_the_window(people):
    more = ContactFactory.create_batch(7)
    assert len(more) + 3 == 10
    campaign = schedule(segments_input([[seg(everyone())]], run_at=_local(1, time(19, 55))))
    # 10 texts at one every 60 seconds: 10 minutes, past 8:00 PM.
    shown = preview_campaign(campaign, now=utcnow(), zone=ZONE, rate=1 / 60, window=WINDOW)
    assert shown.duration_seconds == pytest.approx(600)
    assert len(shown.warnings) == 1
    assert "Sending takes about 10 minutes" in shown.warnings[0]
    assert "past the end of the sending window (9:00 AM–8:00 PM)" in shown.warnings[0]
    fast = preview_campaign(campaign, now=utcnow(), zone=ZONE, rate=1.0, window=WINDOW)
    assert fast.warnings == []


def test_a_segment_whose_query_fails_is_refused_on_the_targeting_naming_it(people):

    broken = SegmentFactory(
        name="Old SQL", rule={"all": []}, raw_sql="SELECT phone AS phone_number FROM contacts"
    )
    db.session.commit()
    broken.raw_sql = "SELECT gone AS phone_number FROM contacts"
    db.session.commit()
    values = segments_input([[seg(broken)]])
    with pytest.raises(ValidationError) as caught:
        save_campaign(None, values, schedule=True, user=None, now=utcnow(), zone=ZONE)
    assert caught.value.field == "targeting"
    assert caught.value.message.startswith("Segment Old SQL: Unknown column gone")
    db.session.rollback()
    assert campaigns() == 0
    guess = estimate(values, now=utcnow(), zone=ZONE)
    assert guess.recipients is None and guess.error.startswith("Segment Old SQL: Unknown column")


def test_an_edit_refused_for_a_broken_target_leaves_the_campaign_as_it_was(people):

    broken = SegmentFactory(rule={"all": []}, raw_sql="SELECT gone AS phone_number FROM contacts")
    campaign = schedule(segments_input([[seg(everyone())]], title="Before"))
    with pytest.raises(ValidationError, match="Unknown column gone"):
        save_campaign(
            campaign,
            segments_input([[seg(broken)]], title="After"),
            schedule=True,
            user=None,
            now=utcnow(),
            zone=ZONE,
        )
    # Not even the object in the session was touched (a caller that forgets to roll back
    # cannot save half an edit).
    assert campaign.title == "Before" and campaign.targeting["include"] == [[seg(everyone())]]
    assert campaign.estimated_recipients == 3
