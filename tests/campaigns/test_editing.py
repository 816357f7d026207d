"""The campaign editing pages: the New campaign form and its live parts (the include/exclude
builder, the CSV step through the real uploads pipeline, the SMS counter, the label hint, the
estimate), the review before scheduling, creating each kind of campaign, editing, deleting and
unscheduling, roles and CSRF. Every bad field or file is a 422 naming the field, saving nothing."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from rq import Queue

from app.campaigns.services import start_campaign
from app.contacts.phones import display_phone
from app.extensions import db
from app.jobs import QUEUE_DEFAULT
from app.jobs.imports import import_upload, validate_upload
from app.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    OutboundMessage,
    Upload,
    UploadPurpose,
    UploadStatus,
    utcnow,
)
from tests.campaigns.builders import personalized_upload
from tests.conftest import sign_in
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MissiveLabelFactory,
    SegmentFactory,
    UploadFactory,
    label_contact,
    upload_rows,
)
from tests.support import HX, by_id

ZONE = ZoneInfo("America/Detroit")


# -- helpers -------------------------------------------------------------------------------------
def local_run(days: int = 2, at: str = "10:00") -> tuple[str, str]:
    """A run date and time in the org zone, `days` from now."""
    return (datetime.now(ZONE) + timedelta(days=days)).strftime("%Y-%m-%d"), at


def segment_fields(*groups: list[tuple[str, Any]], side: str = "include") -> dict[str, str]:
    """Builder fields for groups of ("segment", id) / ("label", id, since) conditions."""
    fields: dict[str, str] = {}
    for g, group in enumerate(groups):
        fields[f"{side}-{g}"] = "group"
        for c, condition in enumerate(group):
            at = f"{side}-{g}-{c}"
            fields[f"{at}-type"] = condition[0]
            if condition[0] == "segment":
                fields[f"{at}-segment_id"] = str(condition[1])
            else:
                fields[f"{at}-label_id"] = str(condition[1])
                fields[f"{at}-since"] = condition[2] if len(condition) > 2 else ""
    return fields


def campaign_form(**fields: Any) -> dict[str, str]:
    """A complete New campaign post (segments kind unless told), scheduled two days out."""
    run_date, run_time = local_run()
    base = {
        "title": "Polling places",
        "target_kind": "segments",
        "first_message": "Polls are open 7 AM to 8 PM tomorrow.",
        "second_message": "",
        "delay_minutes": "10",
        "missive_label_name": "",
        "when": "later",
        "run_date": run_date,
        "run_time": run_time,
        "action": "schedule",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def campaigns() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) or 0


def latest_campaign() -> Campaign:
    return db.session.scalar(sa.select(Campaign).order_by(Campaign.id.desc()).limit(1))


def latest_upload() -> Upload:
    return db.session.scalar(sa.select(Upload).order_by(Upload.id.desc()).limit(1))


def assert_refused(response, field: str, message: str) -> str:
    """A 422 whose form marks `field` (aria-invalid, aria-describedby its message)."""
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html[:2000]
    error = by_id(html, f"campaigns-{field}-error")
    assert message in error.text, error.text
    assert re.search(rf'aria-invalid="true" aria-describedby="campaigns-{field}-error"', html), (
        f"no control marked for {field}"
    )
    assert "Nothing was saved." in by_id(html, "campaigns-form-errors").text
    return html


@pytest.fixture
def people():
    """Five eligible contacts, one unsubscribed, in segment `all`; `north` holds two of them."""
    contacts = [ContactFactory(zip_code="48201" if i < 2 else "48226") for i in range(5)]
    ContactFactory(unsubscribed=True)
    everyone = SegmentFactory(name="Everyone", rule={"all": []})
    north = SegmentFactory(
        name="North", rule={"all": [{"type": "zip_code", "op": "in", "values": ["48201"]}]}
    )
    db.session.commit()
    return {"contacts": contacts, "everyone": everyone, "north": north}


def csv_upload(client, content: bytes, filename: str = "list.csv", **fields: str):
    return client.post(
        "/campaigns/upload",
        data={"file": (io.BytesIO(content), filename), **fields},
        content_type="multipart/form-data",
        headers=HX,
    )


# -- the page ------------------------------------------------------------------------------------
def test_new_page_shows_the_three_kinds_the_builder_messages_label_time_and_estimate(
    operator_client, people
):
    MissiveLabelFactory(name="Eastside <b>")
    db.session.commit()
    response = operator_client.get("/campaigns/new")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    form = by_id(html, "campaigns-form")
    for kind in ("segments", "uploaded_list", "personalized"):
        assert f'id="campaigns-kind-{kind}"' in form
    assert 'value="segments" id="campaigns-kind-segments" checked' in form
    builder = by_id(html, "campaigns-targeting")
    assert "No one yet: choose a segment or a label." in builder.text
    assert f'value="segment:{people["everyone"].id}"' in builder
    assert "Eastside &lt;b&gt;" in builder  # escaped
    assert 'id="campaigns-first_message-count"' in html  # the broadcasts' counter
    assert 'id="campaigns-upload"' in html and 'name="upload_id" value=""' in html
    assert "Choose at least one segment or label" in by_id(html, "campaigns-estimate").text
    assert 'aria-live="polite"' in by_id(html, "campaigns-estimate")
    assert 'name="run_date"' in html and 'id="campaigns-when-now"' in html
    assert "America/Detroit (UTC" in html


def test_viewers_get_403_on_the_page_and_on_every_post(viewer_client, people):
    campaign = CampaignFactory(status=CampaignStatus.SCHEDULED, run_at=utcnow() + timedelta(days=1))
    upload = UploadFactory(done=True, purpose=UploadPurpose.CAMPAIGN_LIST)
    db.session.commit()
    assert viewer_client.get("/campaigns/new").status_code == 403
    assert viewer_client.get(f"/campaigns/{campaign.id}/edit").status_code == 403
    for url in (
        "/campaigns/",
        "/campaigns/estimate",
        "/campaigns/preview",
        "/campaigns/targeting",
        "/campaigns/sms-count",
        "/campaigns/label-hint",
        "/campaigns/upload",
        f"/campaigns/uploads/{upload.id}/import",
        f"/campaigns/{campaign.id}/edit",
        f"/campaigns/{campaign.id}/delete",
        f"/campaigns/{campaign.id}/unschedule",
    ):
        assert viewer_client.post(url, data=campaign_form()).status_code == 403, url
    db.session.refresh(campaign)
    assert campaigns() == 1 and campaign.status == CampaignStatus.SCHEDULED


def test_posts_without_the_csrf_token_are_refused_and_save_nothing(
    operator_client, people, csrf_enabled
):
    fields = campaign_form(**segment_fields([("segment", people["everyone"].id)]))
    response = operator_client.post("/campaigns/", data=fields)
    assert response.status_code == 400
    assert operator_client.post("/campaigns/estimate", data=fields).status_code == 400
    assert campaigns() == 0


# -- the builder ---------------------------------------------------------------------------------
def test_the_builder_adds_a_picked_condition_as_a_new_group_never_an_empty_one(
    operator_client, people
):
    everyone, north = people["everyone"], people["north"]
    response = operator_client.post(
        "/campaigns/targeting",
        data={"action": "add", "at": "include", "add-include": f"segment:{everyone.id}"},
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    group = by_id(html, "campaigns-include-0")
    assert f'<option value="{everyone.id}" selected>Everyone</option>' in group
    assert 'name="include-0-0-type" value="segment"' in group
    # Each re-render asks for the estimate again, with the form as it now is.
    assert 'hx-post="/campaigns/estimate" hx-trigger="load"' in html

    label = MissiveLabelFactory(name="Eastside")
    db.session.commit()
    fields = {**segment_fields([("segment", everyone.id)]), "add-include-0": f"label:{label.id}"}
    html = operator_client.post(
        "/campaigns/targeting", data={**fields, "action": "add", "at": "include-0"}, headers=HX
    ).get_data(as_text=True)
    condition = by_id(html, "campaigns-include-0-1")
    assert f'<option value="{label.id}" selected>Eastside</option>' in condition
    assert 'name="include-0-1-since"' in condition

    fields = {**segment_fields([("segment", everyone.id)]), "add-exclude": f"segment:{north.id}"}
    html = operator_client.post(
        "/campaigns/targeting", data={**fields, "action": "add", "at": "exclude"}, headers=HX
    ).get_data(as_text=True)
    assert f'<option value="{north.id}" selected>North</option>' in by_id(
        html, "campaigns-exclude-0"
    )

    # Nothing picked: nothing added (no empty condition, no empty group).
    html = operator_client.post(
        "/campaigns/targeting", data={"action": "add", "at": "include", "add-include": ""}
    ).get_data(as_text=True)
    assert 'id="campaigns-include-0"' not in html
    assert "No one yet" in by_id(html, "campaigns-include").text


def test_the_builder_removes_a_condition_and_a_group_left_empty_goes_too(operator_client, people):
    everyone, north = people["everyone"], people["north"]
    fields = segment_fields(
        [("segment", everyone.id), ("segment", north.id)], [("segment", north.id)]
    )
    html = operator_client.post(
        "/campaigns/targeting", data={**fields, "action": "remove", "at": "include-0-0"}, headers=HX
    ).get_data(as_text=True)
    first = by_id(html, "campaigns-include-0")
    assert f'<option value="{north.id}" selected>North</option>' in first
    assert 'id="campaigns-include-0-1"' not in html and 'id="campaigns-include-1"' in html

    html = operator_client.post(
        "/campaigns/targeting", data={**fields, "action": "remove", "at": "include-1-0"}, headers=HX
    ).get_data(as_text=True)
    assert 'id="campaigns-include-1"' not in html and 'id="campaigns-include-0-1"' in html

    html = operator_client.post(
        "/campaigns/targeting", data={**fields, "action": "remove", "at": "include-0"}, headers=HX
    ).get_data(as_text=True)
    assert 'id="campaigns-include-1"' not in html
    assert f'<option value="{north.id}" selected>' in by_id(html, "campaigns-include-0-0")


# -- small live parts ----------------------------------------------------------------------------
def test_the_sms_counter_is_the_broadcasts_partial_with_campaign_ids(operator_client):
    response = operator_client.post(
        "/campaigns/sms-count?field=first_message", data={"first_message": "Café ✨ tonight"}
    )
    html = response.get_data(as_text=True)
    count = by_id(html, "campaigns-first_message-count")
    assert "UCS-2" in count.text and "1 SMS" in count.text
    assert 'id="campaigns-first_message-ucs2"' in html
    assert operator_client.post("/campaigns/sms-count?field=title").status_code == 404


def test_the_label_hint_says_exists_will_be_created_or_what_is_wrong(operator_client):
    MissiveLabelFactory(name="Election Day")
    db.session.commit()

    def hint(name: str) -> str:
        return operator_client.post(
            "/campaigns/label-hint", data={"missive_label_name": name}, headers=HX
        ).get_data(as_text=True)

    assert "Exists in Missive" in hint("  election   day ")
    assert "will be created in Missive" in hint("Town hall")
    assert "cannot contain “/”" in hint("News/Town hall")
    assert "Applied to every conversation" in hint("")


# -- the estimate --------------------------------------------------------------------------------
def test_the_estimate_counts_include_groups_minus_exclude_groups_once_each(operator_client, people):
    everyone, north = people["everyone"], people["north"]
    label = MissiveLabelFactory(name="Eastside")
    labelled = people["contacts"][4]
    label_contact(labelled, label)
    db.session.commit()
    fields = {
        "target_kind": "segments",
        **segment_fields([("segment", north.id)], [("label", label.id, "")]),
        **segment_fields([("segment", everyone.id)], side="exclude"),
    }
    fields = {k: v for k, v in fields.items() if not k.startswith("exclude")}
    html = operator_client.post("/campaigns/estimate", data=fields, headers=HX).get_data(
        as_text=True
    )
    assert by_id(html, "campaigns-estimate-count").text == "3"
    assert "About 3 people would receive it now" in by_id(html, "campaigns-estimate-result").text
    fields.update(segment_fields([("segment", north.id)], side="exclude"))
    html = operator_client.post("/campaigns/estimate", data=fields).get_data(as_text=True)
    assert by_id(html, "campaigns-estimate-count").text == "1"


def test_the_estimate_says_what_to_fix_first(operator_client, people):
    html = operator_client.post("/campaigns/estimate", data={"target_kind": "segments"}).get_data(
        as_text=True
    )
    assert "Choose at least one segment or label" in by_id(html, "campaigns-estimate-problem").text
    html = operator_client.post(
        "/campaigns/estimate", data={"target_kind": "uploaded_list", "upload_id": ""}
    ).get_data(as_text=True)
    assert "Upload a CSV file first." in by_id(html, "campaigns-estimate-problem").text


def test_the_personalized_estimate_counts_rows_with_no_value_for_a_merge_field(operator_client):
    a, b, c = ContactFactory(), ContactFactory(), ContactFactory()
    upload = personalized_upload(
        [
            (a, {"First Name": "Ava", "Place": "Library"}),
            (b, {"First Name": "Ben", "Place": ""}),
            (c, {"First Name": "", "Place": "School"}),
        ]
    )
    db.session.commit()
    html = operator_client.post(
        "/campaigns/estimate",
        data={
            "target_kind": "personalized",
            "upload_id": str(upload.id),
            "message_source": "template",
            "first_message": "Hi {First Name}, vote at {place}.",
        },
    ).get_data(as_text=True)
    assert by_id(html, "campaigns-estimate-count").text == "1"
    assert "2 rows have no value for a merge field" in by_id(html, "campaigns-estimate-merge").text


# -- the review ----------------------------------------------------------------------------------
def test_review_shows_recipients_texts_segments_duration_and_the_follow_up(operator_client, people):
    fields = campaign_form(
        **segment_fields([("segment", people["everyone"].id)]),
        first_message="x" * 170,
        second_message="Did you vote?",
        missive_label_name="Election day",
    )
    response = operator_client.post("/campaigns/preview", data=fields, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    review = by_id(html, "campaigns-review")
    assert by_id(html, "campaigns-review-recipients").text == "5"
    # 5 people × 2 SMS for the first message, + 5 × 1 if nobody replies.
    assert by_id(html, "campaigns-review-segments").text == "15"
    assert "10 for first messages + 5 for follow-ups if nobody replies" in review.text
    assert "under a minute" in by_id(html, "campaigns-review-duration").text
    messages = by_id(html, "campaigns-review-messages").text
    assert "First message" in messages and "2 SMS" in messages and "Did you vote?" in messages
    assert "10:00 AM" in by_id(html, "campaigns-review-when").text
    assert "will be created in Missive" in by_id(html, "campaigns-review-label").text
    assert 'name="action" value="schedule"' in by_id(html, "campaigns-schedule")
    assert campaigns() == 0  # a review saves nothing


def test_review_warns_when_the_run_time_falls_in_quiet_hours(operator_client, people):
    run_date, _ = local_run(days=3)
    fields = campaign_form(
        **segment_fields([("segment", people["everyone"].id)]), run_date=run_date, run_time="03:00"
    )
    html = operator_client.post("/campaigns/preview", data=fields, headers=HX).get_data(
        as_text=True
    )
    assert "9:00 AM" in by_id(html, "campaigns-review-quiet").text


def test_review_of_personalized_rows_renders_the_first_rows_ucs2_the_longest_and_merge_issues(
    operator_client,
):
    a, b, c, d = (ContactFactory() for _ in range(4))
    upload = personalized_upload(
        [
            (a, {"First Name": "Ava", "Place": "Library"}),
            (b, {"First Name": "Zoë", "Place": "the long community center on Woodward"}),
            (c, {"First Name": "Cleo", "Place": ""}),
            (d, {"First Name": "<b>Dee</b>", "Place": "School"}),
        ]
    )
    db.session.commit()
    fields = campaign_form(
        target_kind="personalized",
        upload_id=str(upload.id),
        message_source="template",
        first_message="Hi {First Name}, vote at {Place}.",
    )
    html = operator_client.post("/campaigns/preview", data=fields, headers=HX).get_data(
        as_text=True
    )
    assert by_id(html, "campaigns-review-recipients").text == "3"
    messages = by_id(html, "campaigns-review-messages")
    assert (
        "Hi Ava, vote at Library." in messages.text
        and display_phone(a.phone, "US") in messages.text
    )
    assert "Hi &lt;b&gt;Dee&lt;/b&gt;" in messages  # escaped
    assert "{" not in messages.text
    assert "1 text of 3 needs UCS-2" in by_id(html, "campaigns-review-ucs2").text
    assert "community center" in by_id(html, "campaigns-review-longest").text
    issues = by_id(html, "campaigns-review-merge").text
    assert "1 row gets no text" in issues
    assert f"Row 4 ({display_phone(c.phone, 'US')}): no value for {{Place}}" in issues


def test_review_without_a_time_can_only_save_a_draft(operator_client, people):
    fields = campaign_form(
        **segment_fields([("segment", people["everyone"].id)]), run_date="", run_time=""
    )
    html = operator_client.post("/campaigns/preview", data=fields, headers=HX).get_data(
        as_text=True
    )
    assert "No time chosen" in by_id(html, "campaigns-review-when").text
    assert "disabled" in by_id(html, "campaigns-schedule")


def test_an_invalid_review_is_a_422_with_the_whole_form_retargeted(operator_client, people):
    fields = campaign_form(**segment_fields([("segment", people["everyone"].id)]), first_message="")
    response = operator_client.post("/campaigns/preview", data=fields, headers=HX)
    html = assert_refused(response, "first_message", "Write the first message.")
    assert response.headers["HX-Retarget"] == "#campaigns-form"
    assert html.lstrip().startswith("<form") or "<html" not in html
    # The plain (no script) review is the whole page, with the review inside the form.
    fields["first_message"] = "Hello"
    page = operator_client.post("/campaigns/preview", data=fields)
    assert page.status_code == 200
    assert "<html" in page.get_data(as_text=True)
    assert 'id="campaigns-review"' in by_id(page.get_data(as_text=True), "campaigns-form")


# -- creating each kind --------------------------------------------------------------------------
def test_scheduling_a_segments_campaign_saves_it_audited_and_redirects_to_its_page(
    operator_client, operator, people
):
    everyone, north = people["everyone"], people["north"]
    fields = campaign_form(
        **segment_fields([("segment", everyone.id)]),
        **segment_fields([("segment", north.id)], side="exclude"),
        second_message="Any questions?",
        delay_minutes="30",
    )
    response = operator_client.post("/campaigns/", data=fields)
    campaign = latest_campaign()
    assert response.status_code == 303
    assert response.location.endswith(f"/campaigns/{campaign.id}")
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.target_kind == CampaignTarget.SEGMENTS
    assert campaign.targeting == {
        "include": [[{"type": "segment", "segment_id": everyone.id}]],
        "exclude": [[{"type": "segment", "segment_id": north.id}]],
    }
    assert campaign.delay_seconds == 1800 and campaign.second_message == "Any questions?"
    local = campaign.run_at.astimezone(ZONE)
    assert (local.strftime("%Y-%m-%d"), local.strftime("%H:%M")) == local_run()
    assert campaign.estimated_recipients == 3 and campaign.created_by_id == operator.id
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "campaign.create"))
    assert audit.object_id == str(campaign.id) or audit.object_id == campaign.id
    page = operator_client.get(response.location).get_data(as_text=True)
    assert "scheduled for" in by_id(page, "flash").text


def test_htmx_schedule_answers_hx_redirect_and_send_now_starts_within_a_minute(
    operator_client, people
):
    fields = campaign_form(**segment_fields([("segment", people["everyone"].id)]), when="now")
    response = operator_client.post("/campaigns/", data=fields, headers=HX)
    campaign = latest_campaign()
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/campaigns/{campaign.id}"
    assert timedelta(0) < campaign.run_at - utcnow() <= timedelta(minutes=1)


def test_save_as_draft_keeps_it_from_sending_even_without_a_time(operator_client, people):
    fields = campaign_form(
        **segment_fields([("segment", people["everyone"].id)]),
        run_date="",
        run_time="",
        action="draft",
    )
    response = operator_client.post("/campaigns/", data=fields)
    campaign = latest_campaign()
    assert response.status_code == 303
    assert campaign.status == CampaignStatus.DRAFT and campaign.run_at is None
    assert (
        "saved as a draft"
        in by_id(operator_client.get(response.location).get_data(as_text=True), "flash").text
    )
    # A draft saved with "Send now" keeps no time: it goes when someone schedules it.
    fields.update(when="now")
    assert operator_client.post("/campaigns/", data=fields).status_code == 303
    assert latest_campaign().run_at is None and latest_campaign().status == CampaignStatus.DRAFT
    fields.update(when="later")
    # Scheduling needs a time (or send now).
    fields["action"] = "schedule"
    before = campaigns()
    assert_refused(operator_client.post("/campaigns/", data=fields), "run_at", "Choose when")
    assert campaigns() == before


def test_a_list_campaign_from_an_imported_upload_estimates_what_the_start_sends(
    operator_client, people
):
    contacts = people["contacts"][:3]
    upload = UploadFactory(done=True, purpose=UploadPurpose.CAMPAIGN_LIST, contacts=contacts)
    ContactFactory(unsubscribed=True)
    db.session.commit()
    fields = campaign_form(target_kind="uploaded_list", upload_id=str(upload.id))
    estimate = operator_client.post("/campaigns/estimate", data=fields).get_data(as_text=True)
    assert by_id(estimate, "campaigns-estimate-count").text == "3"
    assert operator_client.post("/campaigns/", data=fields).status_code == 303
    campaign = latest_campaign()
    assert campaign.target_kind == CampaignTarget.UPLOADED_LIST
    assert campaign.upload_id == upload.id and campaign.estimated_recipients == 3
    started = start_campaign(campaign.id, now=campaign.run_at, zone="America/Detroit")
    assert started.actual_recipients == 3


def test_a_personalized_template_campaign_sends_each_row_its_text(operator_client):
    a, b = ContactFactory(), ContactFactory()
    upload = personalized_upload(
        [(a, {"First Name": "Ava", "Place": "Library"}), (b, {"First Name": "Ben", "Place": ""})]
    )
    db.session.commit()
    fields = campaign_form(
        target_kind="personalized",
        upload_id=str(upload.id),
        message_source="template",
        first_message="Hi {first name}, vote at {PLACE}.",
    )
    assert operator_client.post("/campaigns/", data=fields).status_code == 303
    campaign = latest_campaign()
    assert campaign.target_kind == CampaignTarget.PERSONALIZED and campaign.message_column is None
    assert campaign.estimated_recipients == 1
    start_campaign(campaign.id, now=campaign.run_at, zone="America/Detroit")
    bodies = db.session.scalars(
        sa.select(OutboundMessage.body).where(OutboundMessage.campaign_id == campaign.id)
    ).all()
    assert bodies == ["Hi Ava, vote at Library."]


def test_a_personalized_message_column_campaign_needs_no_first_message(operator_client):
    a, b = ContactFactory(), ContactFactory()
    upload = personalized_upload(
        [(a, {"message": "Your ballot is ready, Ava."}), (b, {"message": ""})]
    )
    db.session.commit()
    fields = campaign_form(
        target_kind="personalized",
        upload_id=str(upload.id),
        message_source="column",
        first_message="",
    )
    assert operator_client.post("/campaigns/", data=fields).status_code == 303
    campaign = latest_campaign()
    assert campaign.message_column == "message" and campaign.first_message == ""
    assert campaign.estimated_recipients == 1
    started = start_campaign(campaign.id, now=campaign.run_at, zone="America/Detroit")
    assert started.actual_recipients == 1


def test_the_estimate_of_a_segments_campaign_is_what_its_start_sends(operator_client, people):
    label = MissiveLabelFactory(name="Eastside")
    for contact in people["contacts"][1:4]:
        label_contact(contact, label)
    db.session.commit()
    fields = campaign_form(
        **segment_fields([("segment", people["north"].id)], [("label", label.id, "")]),
        **segment_fields(
            [("segment", people["everyone"].id), ("label", label.id, "")], side="exclude"
        ),
    )
    fields = {k: v for k, v in fields.items() if not k.startswith("exclude-0-0")}
    estimate = operator_client.post("/campaigns/estimate", data=fields).get_data(as_text=True)
    shown = int(by_id(estimate, "campaigns-estimate-count").text)
    assert operator_client.post("/campaigns/", data=fields).status_code == 303
    campaign = latest_campaign()
    assert campaign.targeting["exclude"] == [
        [{"type": "label", "label_id": label.id, "since": None}]
    ]
    started = start_campaign(campaign.id, now=campaign.run_at, zone="America/Detroit")
    # North (contacts 0 and 1) or the label (1, 2, 3), minus the label: contact 0 only.
    assert started.actual_recipients == campaign.estimated_recipients == shown == 1


# -- the CSV step, through the real pipeline -----------------------------------------------------
PERSONAL_CSV = (
    b"phone,first name,place\n"
    b"(313) 555-0101,Ava,Library\n"
    b"313-555-0102,Ben,\n"
    b"not a number,Cleo,School\n"
)


def test_a_csv_is_checked_imported_and_sent_from_the_campaign_form(operator_client, redis_conn):
    ContactFactory(phone="+13135550102")  # known already: stays, joins the upload
    db.session.commit()
    response = csv_upload(
        operator_client, PERSONAL_CSV, target_kind="personalized", message_source="template"
    )
    html = response.get_data(as_text=True)
    upload = latest_upload()
    assert response.status_code == 200 and "<html" not in html
    assert upload.purpose == UploadPurpose.CAMPAIGN_LIST and upload.status == UploadStatus.PENDING
    assert f'name="upload_id" value="{upload.id}"' in html
    status = by_id(html, "campaigns-upload-status")
    assert 'hx-trigger="every 2s"' in status and "Checking every row" in status.text
    jobs = Queue(QUEUE_DEFAULT, connection=redis_conn).jobs
    assert [(j.func_name, j.args) for j in jobs] == [
        ("app.jobs.imports.validate_upload", (upload.id,))
    ]

    db.session.expire_all()
    validate_upload(upload.id)
    html = operator_client.get(f"/campaigns/uploads/{upload.id}/status", headers=HX).get_data(
        as_text=True
    )
    status = by_id(html, "campaigns-upload-status")
    assert 'hx-trigger="every 2s"' not in status  # the job is done: no more polling
    assert "Read the report, then import" in status.text
    assert by_id(html, "uploads-invalid").text == "1"
    assert f'hx-post="/campaigns/uploads/{upload.id}/import"' in by_id(html, "uploads-import")
    assert "<form" not in status  # no form inside the campaign form
    assert 'hx-trigger="load"' in html  # the estimate counts again
    # Not imported yet: it cannot be scheduled.
    fields = campaign_form(
        target_kind="personalized",
        upload_id=str(upload.id),
        first_message="Hi {first name}, vote at {place}.",
    )
    assert_refused(
        operator_client.post("/campaigns/", data=fields), "upload_id", "import its valid rows"
    )

    html = operator_client.post(f"/campaigns/uploads/{upload.id}/import", headers=HX).get_data(
        as_text=True
    )
    assert "Importing the valid rows" in by_id(html, "campaigns-upload-status").text
    db.session.expire_all()  # the request marked it for import
    import_upload(upload.id)
    html = operator_client.get(f"/campaigns/uploads/{upload.id}/status", headers=HX).get_data(
        as_text=True
    )
    fields_list = by_id(html, "campaigns-merge-fields")
    assert 'data-insert="{first name}"' in fields_list and 'data-insert="{place}"' in fields_list
    assert "{phone}" not in fields_list.text

    estimate = operator_client.post("/campaigns/estimate", data=fields).get_data(as_text=True)
    assert by_id(estimate, "campaigns-estimate-count").text == "1"
    assert "1 row has no value" in by_id(estimate, "campaigns-estimate-merge").text
    assert operator_client.post("/campaigns/", data=fields).status_code == 303
    campaign = latest_campaign()
    started = start_campaign(campaign.id, now=campaign.run_at, zone="America/Detroit")
    assert started.actual_recipients == campaign.estimated_recipients == 1


def test_the_status_page_without_htmx_goes_to_the_uploads_page(operator_client):
    upload = UploadFactory(done=True, purpose=UploadPurpose.CAMPAIGN_LIST)
    db.session.commit()
    response = operator_client.get(f"/campaigns/uploads/{upload.id}/status")
    assert response.status_code == 302 and response.location.endswith(f"/uploads/{upload.id}")
    other = UploadFactory(done=True, purpose=UploadPurpose.CONTACT_IMPORT)
    db.session.commit()
    assert (
        operator_client.get(f"/campaigns/uploads/{other.id}/status", headers=HX).status_code == 404
    )


def test_a_file_with_its_own_texts_is_uploaded_for_a_message_column(operator_client):
    content = b"phone,message\n3135550101,Your ballot is ready\n"
    response = csv_upload(
        operator_client, content, target_kind="personalized", message_source="column"
    )
    assert response.status_code == 200
    assert latest_upload().purpose == UploadPurpose.PERSONALIZED


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        (b"phone,name\n", {}, "The file has a header row but no data rows."),
        (b"\x00\x01\x02binary", {}, "This is not a text CSV file"),
        (b"PK\x03\x04xlsx", {}, "Excel workbook"),
        (
            b"phone,name\n3135550101,Ava\n",
            {"target_kind": "personalized", "message_source": "column"},
            "No message column",
        ),
    ],
    ids=["header-only", "binary", "excel", "no-message-column"],
)
def test_a_bad_csv_gets_the_pipelines_own_error_and_saves_nothing(
    operator_client, redis_conn, content, fields, message
):
    response = csv_upload(operator_client, content, **{"target_kind": "uploaded_list", **fields})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in by_id(html, "campaigns-file-error").text
    assert 'aria-invalid="true" aria-describedby="campaigns-file-error"' in by_id(
        html, "campaigns-upload"
    )
    assert latest_upload() is None
    assert Queue(QUEUE_DEFAULT, connection=redis_conn).jobs == []


def test_an_upload_without_a_file_or_of_the_wrong_type_is_refused(operator_client):
    response = operator_client.post("/campaigns/upload", data={"target_kind": "uploaded_list"})
    assert response.status_code == 422
    assert "Choose a .csv file" in response.get_data(as_text=True)
    response = csv_upload(operator_client, b"phone\n3135550101\n", filename="list.xlsx")
    assert response.status_code == 422 and "Choose a .csv file" in response.get_data(as_text=True)
    assert latest_upload() is None


# -- bad input on every field --------------------------------------------------------------------
def _segments(people) -> dict[str, str]:
    return segment_fields([("segment", people["everyone"].id)])


BAD_FIELDS = [
    ("empty first message", {"first_message": "  "}, "first_message", "Write the first message."),
    ("too long", {"first_message": "x" * 1601}, "first_message", "at most 1,600 characters"),
    ("nul in message", {"first_message": "Hi\x00"}, "first_message", "NUL character"),
    ("nul in title", {"title": "A\x00"}, "title", "NUL character"),
    ("follow-up too long", {"second_message": "y" * 1601}, "second_message", "at most 1,600"),
    ("delay not a number", {"delay_minutes": "ten"}, "delay_minutes", "whole number of minutes"),
    ("negative delay", {"delay_minutes": "-5"}, "delay_minutes", "whole number of minutes"),
    ("delay too long", {"delay_minutes": "10081"}, "delay_minutes", "at most 10,080 minutes"),
    (
        "no delay with a follow-up",
        {"delay_minutes": "", "second_message": "Hi again"},
        "delay_minutes",
        "Give the delay",
    ),
    ("past run time", {"run_date": "2020-01-01"}, "run_at", "Choose a time in the future"),
    (
        "run time too far",
        {"run_date": (datetime.now(ZONE) + timedelta(days=61)).strftime("%Y-%m-%d")},
        "run_at",
        "within the next 60 days",
    ),
    ("unparseable date", {"run_date": "2026-13-45"}, "run_at", "Give both a date and a time"),
    ("date without time", {"run_time": ""}, "run_at", "Give both a date and a time"),
    ("title too long", {"title": "t" * 201}, "title", "at most 200 characters"),
    ("label with a slash", {"missive_label_name": "News/Polls"}, "missive_label_name", "“/”"),
    ("label too long", {"missive_label_name": "l" * 101}, "missive_label_name", "at most 100"),
    ("unknown kind", {"target_kind": "everyone"}, "target_kind", "Choose who receives it"),
]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [case[1:] for case in BAD_FIELDS],
    ids=[case[0] for case in BAD_FIELDS],
)
def test_a_bad_field_is_a_422_naming_it_and_nothing_is_saved(
    operator_client, people, fields, field, message
):
    before = campaigns()
    response = operator_client.post(
        "/campaigns/", data=campaign_form(**_segments(people), **fields)
    )
    assert_refused(response, field, message)
    assert campaigns() == before


BAD_TARGETS = [
    ("no include group", lambda p: {}, "Choose at least one segment or label", None),
    (
        "unknown segment",
        lambda p: segment_fields([("segment", 99999)]),
        "Segment 99999 does not exist",
        None,
    ),
    (
        "unknown label",
        lambda p: segment_fields([("label", 99999, "")]),
        "Label 99999 does not exist",
        None,
    ),
    (
        "bad since date",
        lambda p: segment_fields(
            [("segment", p["everyone"].id), ("label", p["label"].id, "2026-02-30")]
        ),
        "Include group 1, condition 2",
        "include-0-1",
    ),
    (
        "empty group",
        lambda p: {**segment_fields([("segment", p["everyone"].id)]), "include-1": "group"},
        "Include group 2: add a segment or a label",
        "include-1",
    ),
    (
        "empty exclude group",
        lambda p: {**segment_fields([("segment", p["everyone"].id)]), "exclude-0": "group"},
        "Exclude group 1: add a segment or a label",
        "exclude-0",
    ),
    (
        "segment not chosen",
        lambda p: {"include-0": "group", "include-0-0-type": "segment"},
        "Include group 1, condition 1: choose a segment",
        "include-0-0",
    ),
    (
        "nul in a condition",
        lambda p: {
            "include-0": "group",
            "include-0-0-type": "segment",
            "include-0-0-segment_id": "1\x00",
        },
        "NUL character",
        None,
    ),
    (
        "unknown condition type",
        lambda p: {"include-0": "group", "include-0-0-type": "zip"},
        "unknown condition type",
        None,
    ),
]


@pytest.mark.parametrize(
    ("make", "message", "at"),
    [case[1:] for case in BAD_TARGETS],
    ids=[case[0] for case in BAD_TARGETS],
)
def test_a_bad_target_is_a_422_on_the_builder_and_nothing_is_saved(
    operator_client, people, make, message, at
):
    people["label"] = MissiveLabelFactory(name="Eastside")
    db.session.commit()
    response = operator_client.post("/campaigns/", data=campaign_form(**make(people)))
    html = assert_refused(response, "targeting", message)
    builder = by_id(html, "campaigns-targeting")
    assert builder.startswith('<div id="campaigns-targeting" class="targeting" aria-invalid="true"')
    if at:  # the control at fault is marked too
        assert 'aria-invalid="true"' in by_id(html, f"campaigns-{at}")
    assert campaigns() == 0


def test_bad_uploads_and_templates_are_422s_naming_the_field(operator_client, people):
    contact = people["contacts"][0]
    pending = UploadFactory(purpose=UploadPurpose.CAMPAIGN_LIST, status=UploadStatus.VALIDATED)
    contacts_import = UploadFactory(done=True, purpose=UploadPurpose.CONTACT_IMPORT)
    plain_list = UploadFactory(
        done=True, purpose=UploadPurpose.CAMPAIGN_LIST, columns=["phone", "name"]
    )
    upload_rows(plain_list, [(contact, {"name": "Ava"})])
    personal = personalized_upload([(contact, {"First Name": "Ava", "Place": "Library"})])
    db.session.commit()
    cases = [
        ({"target_kind": "uploaded_list", "upload_id": ""}, "upload_id", "Upload a CSV file first"),
        (
            {"target_kind": "uploaded_list", "upload_id": str(pending.id)},
            "upload_id",
            "import its valid rows",
        ),
        (
            {"target_kind": "uploaded_list", "upload_id": str(contacts_import.id)},
            "upload_id",
            "not a campaign upload",
        ),
        (
            {
                "target_kind": "personalized",
                "upload_id": str(personal.id),
                "first_message": "Hi {town}",
            },
            "first_message",
            "{town} is not a column of the file",
        ),
        (
            {
                "target_kind": "personalized",
                "upload_id": str(personal.id),
                "first_message": "Hi {Place",
            },
            "first_message",
            "A brace without its pair",
        ),
        (
            {
                "target_kind": "personalized",
                "upload_id": str(plain_list.id),
                "message_source": "column",
                "first_message": "",
            },
            "message_source",
            "This file has no message column",
        ),
    ]
    for fields, field, message in cases:
        response = operator_client.post("/campaigns/", data=campaign_form(**fields))
        assert_refused(response, field, message)
    assert campaigns() == 0


def test_a_refused_htmx_save_comes_back_as_the_form_with_what_was_typed(operator_client, people):
    fields = campaign_form(**_segments(people), title="Keep <me>", first_message="")
    response = operator_client.post("/campaigns/", data=fields, headers=HX)
    html = assert_refused(response, "first_message", "Write the first message.")
    assert "<html" not in html and html.lstrip().startswith("<form")
    assert response.headers["HX-Retarget"] == "#campaigns-form"
    assert 'value="Keep &lt;me&gt;"' in by_id(html, "campaigns-title")
    assert f'<option value="{people["everyone"].id}" selected>' in by_id(
        html, "campaigns-include-0-0"
    )


# -- editing, deleting, unscheduling -------------------------------------------------------------
def scheduled_campaign(people, **fields: Any) -> Campaign:
    run_at = datetime.now(ZONE).replace(second=0, microsecond=0) + timedelta(days=3)
    campaign = CampaignFactory(
        status=CampaignStatus.SCHEDULED,
        run_at=run_at,
        target_kind=CampaignTarget.SEGMENTS,
        targeting={
            "include": [[{"type": "segment", "segment_id": people["everyone"].id}]],
            "exclude": [],
        },
        delay_seconds=900,
        **fields,
    )
    db.session.commit()
    return campaign


def test_the_edit_page_shows_the_saved_campaign(operator_client, people):
    campaign = scheduled_campaign(people, title="Town <hall>")
    html = operator_client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    form = by_id(html, "campaigns-form")
    assert f'action="/campaigns/{campaign.id}/edit"' in form
    assert 'value="Town &lt;hall&gt;"' in form
    assert f'<option value="{people["everyone"].id}" selected>' in by_id(
        html, "campaigns-include-0-0"
    )
    assert 'name="delay_minutes" value="15"' in form
    local = campaign.run_at.astimezone(ZONE)
    assert f'name="run_date" value="{local:%Y-%m-%d}"' in form
    assert f'<option value="{local:%H:%M}" selected>' in form
    assert by_id(html, "campaigns-estimate-count").text == "5"


def test_editing_saves_the_changes_audited(operator_client, people):
    campaign = scheduled_campaign(people)
    fields = campaign_form(
        **segment_fields([("segment", people["north"].id)]), title="New title", action="schedule"
    )
    response = operator_client.post(f"/campaigns/{campaign.id}/edit", data=fields)
    assert response.status_code == 303 and response.location.endswith(f"/campaigns/{campaign.id}")
    db.session.refresh(campaign)
    assert campaign.title == "New title" and campaign.estimated_recipients == 2
    assert db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action == "campaign.update")
    )
    # A refused edit changes nothing.
    response = operator_client.post(
        f"/campaigns/{campaign.id}/edit", data={**fields, "title": "Other", "first_message": ""}
    )
    assert_refused(response, "first_message", "Write the first message.")
    db.session.refresh(campaign)
    assert campaign.title == "New title"


def test_reviewing_an_edit_schedules_that_campaign_not_a_new_one(operator_client, people):
    campaign = scheduled_campaign(people)
    fields = campaign_form(**_segments(people), campaign_id=str(campaign.id))
    html = operator_client.post("/campaigns/preview", data=fields, headers=HX).get_data(
        as_text=True
    )
    assert f'hx-post="/campaigns/{campaign.id}/edit"' in by_id(html, "campaigns-schedule")
    assert operator_client.post(f"/campaigns/{campaign.id}/edit", data=fields).status_code == 303
    assert campaigns() == 1


@pytest.mark.parametrize(
    "status", [CampaignStatus.SENDING, CampaignStatus.SENT, CampaignStatus.CANCELLED]
)
def test_a_started_campaign_is_read_only_409(operator_client, people, status):
    campaign = scheduled_campaign(people, title="Gone out")
    campaign.status, campaign.started_at = status, utcnow()
    db.session.commit()
    response = operator_client.get(f"/campaigns/{campaign.id}/edit")
    assert response.status_code == 409
    assert "can no longer be changed" in response.get_data(as_text=True)
    fields = campaign_form(**_segments(people), title="Changed")
    for url in (
        f"/campaigns/{campaign.id}/edit",
        f"/campaigns/{campaign.id}/delete",
        f"/campaigns/{campaign.id}/unschedule",
    ):
        assert operator_client.post(url, data=fields).status_code == 409, url
    db.session.refresh(campaign)
    assert campaign.title == "Gone out" and campaign.status == status


def test_deleting_a_draft_or_scheduled_campaign_goes_to_the_index_with_a_flash(
    operator_client, people
):
    campaign = scheduled_campaign(people, title="Oops")
    response = operator_client.post(f"/campaigns/{campaign.id}/delete")
    assert response.status_code == 303 and response.location.endswith("/campaigns/")
    assert db.session.scalar(sa.select(Campaign.id).where(Campaign.id == campaign.id)) is None
    assert (
        "Deleted campaign Oops."
        in by_id(operator_client.get("/campaigns/").get_data(as_text=True), "flash").text
    )
    draft = CampaignFactory()
    db.session.commit()
    response = operator_client.post(f"/campaigns/{draft.id}/delete", headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/campaigns/"
    assert operator_client.post("/campaigns/99999/delete").status_code == 404


def test_unscheduling_makes_it_a_draft_again(operator_client, people):
    campaign = scheduled_campaign(people)
    response = operator_client.post(f"/campaigns/{campaign.id}/unschedule")
    assert response.status_code == 303
    db.session.refresh(campaign)
    assert campaign.status == CampaignStatus.DRAFT
    assert operator_client.post(f"/campaigns/{campaign.id}/unschedule").status_code == 409


# -- the Missive label job -----------------------------------------------------------------------
def test_a_new_label_name_enqueues_the_label_job_after_the_commit(
    operator_client, people, redis_conn
):
    fields = campaign_form(**_segments(people), missive_label_name="Town hall")
    assert operator_client.post("/campaigns/", data=fields).status_code == 303
    campaign = latest_campaign()
    assert campaign.label_state == "pending"
    jobs = Queue(QUEUE_DEFAULT, connection=redis_conn).jobs
    assert [list(j.args) for j in jobs] == [[campaign.id]]


def test_with_redis_down_the_campaign_is_saved_and_the_page_says_the_label_waits(
    make_app, operator, people
):
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    client = down.test_client()
    assert sign_in(client, operator).status_code == 302
    fields = campaign_form(**_segments(people), missive_label_name="Town hall")
    response = client.post("/campaigns/", data=fields)
    assert response.status_code == 303
    campaign = latest_campaign()
    assert campaign.label_state == "pending"
    with client.session_transaction() as session:
        flashes = session.get("_flashes", [])
    assert any("job queue does not answer" in message for _, message in flashes)
