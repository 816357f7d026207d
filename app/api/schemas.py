"""Every request and response body of the API, declared once as pydantic models: spectree
validates requests with them and writes the OpenAPI document from them."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Field(ge=1, le=2**31 - 1)


class Strict(BaseModel):
    """Request bodies: an unknown field is an error (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid")


# -- errors ----------------------------------------------------------------------------------------
class FieldError(BaseModel):
    field: str | None
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the field at fault."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[FieldError] = []
    model_config = ConfigDict(extra="allow")


# -- who -----------------------------------------------------------------------------------------
class TokenInfo(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class Me(BaseModel):
    id: int
    email: str
    name: str
    role: Literal["viewer", "operator", "admin"]
    token: TokenInfo


# -- common ----------------------------------------------------------------------------------------
class PageQuery(Strict):
    cursor: str | None = Field(None, max_length=40, description="`next_cursor` of the last page")
    limit: int = Field(50, ge=1, le=200)


class Stats(BaseModel):
    """The figures of a send (SPEC 8); names say whether they count people or messages."""

    model_config = ConfigDict(extra="allow")
    recipients: int | None = None
    first_sent: int | None = None
    first_delivered: int | None = None
    replies: int | None = None
    unsubscribes: int | None = None
    messages_sent: int | None = None
    delivered: int | None = None
    failed: int | None = None
    awaiting_receipt: int | None = None
    segments_used: int | None = None
    cancelled_by_reply: int | None = None
    delivery_rate: float | None = None
    as_of: str | None = None


# -- broadcasts ----------------------------------------------------------------------------------
class SegmentShare(BaseModel):
    segment_id: int = Id
    ratio: int = Field(ge=0, le=100)


class BroadcastSegmentOut(SegmentShare):
    name: str
    is_filler: bool


class Broadcast(BaseModel):
    id: int
    status: Literal["upcoming", "sending", "sent", "cancelled"]
    first_message: str
    second_message: str | None
    delay_minutes: int
    batch_size: int
    run_at_override: datetime | None = Field(description="A one-off run time, if set")
    scheduled_for: datetime | None = Field(description="The next weekly slot")
    run_at: datetime | None = Field(description="When it runs: the one-off time, else the slot")
    started_at: datetime | None
    finished_at: datetime | None
    recipient_count: int | None
    segments: list[BroadcastSegmentOut]
    stats: Stats | None


class BroadcastList(BaseModel):
    items: list[Broadcast]
    next_cursor: str | None


class UpcomingPatch(Strict):
    """Only the fields given change; each is checked as on the dashboard."""

    first_message: str | None = Field(None, max_length=5000)
    second_message: str | None = Field(None, max_length=5000, description="Empty removes it")
    delay_minutes: int | None = Field(None, ge=0, le=7 * 24 * 60)
    batch_size: int | None = Field(None, ge=1, le=1_000_000)
    run_at: datetime | None = Field(None, description="A one-off run time; null clears it")
    segments: list[SegmentShare] | None = Field(None, max_length=200)
    filler_segment_id: int | None = Field(None, ge=1, le=2**31 - 1)


class RecipientQuery(Strict):
    status: str | None = Field(None, max_length=20, description="A message status or `problems`")
    q: str | None = Field(None, max_length=40, description="A phone number or digits of one")
    cursor: str | None = Field(None, max_length=40)
    limit: int = Field(50, ge=1, le=200)


class Recipient(BaseModel):
    message_id: int
    contact_id: int
    phone: str
    name: str | None
    step: Literal["first", "second"]
    body: str
    status: str
    error_code: str | None
    error_message: str | None
    cancel_reason: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    segment: str | None


class RecipientList(BaseModel):
    items: list[Recipient]
    next_cursor: str | None


class SendNowResult(BaseModel):
    broadcast: Broadcast
    note: str | None = Field(description="Quiet hours: when the texts really go out")


class TestSendResult(BaseModel):
    queued_to: int = Field(description="Staff numbers the current texts go to")


class CancelResult(BaseModel):
    cancelled_messages: int
    status: str


class ReconcileResult(BaseModel):
    job_id: str


class Schedule(Strict):
    monday: time | None = None
    tuesday: time | None = None
    wednesday: time | None = None
    thursday: time | None = None
    friday: time | None = None
    saturday: time | None = None
    sunday: time | None = None
    default_batch_size: int = Field(ge=1, le=1_000_000)


class ScheduleOut(Schedule):
    model_config = ConfigDict(extra="ignore")
    version: int | None
    time_zone: str


# -- campaigns -----------------------------------------------------------------------------------
class SegmentCondition(Strict):
    type: Literal["segment"]
    segment_id: int = Id


class LabelCondition(Strict):
    type: Literal["label"]
    label_id: int = Id
    since: date | None = Field(None, description="Applied on or after this day")


Condition = Annotated[SegmentCondition | LabelCondition, Field(discriminator="type")]


class Targeting(Strict):
    """include: OR of AND-groups of conditions; exclude: the same, subtracted."""

    include: list[list[Condition]] = Field(default_factory=list, max_length=50)
    exclude: list[list[Condition]] = Field(default_factory=list, max_length=50)


TargetKind = Literal["segments", "uploaded_list", "personalized"]


class CampaignTarget(Strict):
    target_kind: TargetKind = "segments"
    targeting: Targeting = Field(default_factory=Targeting)
    upload_id: int | None = Field(None, ge=1, le=2**31 - 1)
    message_source: Literal["template", "column"] = "template"
    first_message: str = Field("", max_length=5000)


class CampaignCreate(CampaignTarget):
    title: str = Field("", max_length=500)
    second_message: str = Field("", max_length=5000)
    delay_seconds: int = Field(600, ge=0, le=7 * 24 * 3600)
    missive_label_name: str = Field("", max_length=500)
    run_at: datetime | None = Field(None, description="When to send (with its offset)")
    send_now: bool = Field(False, description="Send in one minute instead of at run_at")
    schedule: bool = Field(True, description="false keeps it a draft that will not be sent")


class CampaignPatch(Strict):
    """Only the fields given change; the whole campaign is then checked as on the dashboard."""

    title: str | None = Field(None, max_length=500)
    first_message: str | None = Field(None, max_length=5000)
    second_message: str | None = Field(None, max_length=5000)
    delay_seconds: int | None = Field(None, ge=0, le=7 * 24 * 3600)
    target_kind: TargetKind | None = None
    targeting: Targeting | None = None
    upload_id: int | None = Field(None, ge=1, le=2**31 - 1)
    message_source: Literal["template", "column"] | None = None
    missive_label_name: str | None = Field(None, max_length=500)
    run_at: datetime | None = None
    send_now: bool | None = None
    schedule: bool | None = None


class CampaignMultipart(BaseModel):
    """multipart/form-data: `file` (the CSV) and `campaign` (a CampaignCreate as JSON text)."""

    campaign: str = Field(description="The campaign's fields as JSON (see CampaignCreate)")
    file: bytes = Field(description="The CSV file", json_schema_extra={"format": "binary"})


class Campaign(BaseModel):
    id: int
    title: str
    status: Literal["draft", "scheduled", "sending", "sent", "cancelled"]
    status_note: str | None
    first_message: str
    second_message: str | None
    delay_seconds: int
    run_at: datetime | None
    target_kind: TargetKind
    targeting: dict[str, Any]
    upload_id: int | None
    message_column: str | None
    missive_label_name: str | None
    label_state: str | None
    estimated_recipients: int | None
    actual_recipients: int | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime | None
    stats: Stats | None


class CampaignCreated(Campaign):
    upload: Upload | None = Field(None, description="The file imported for it (multipart)")


class CampaignList(BaseModel):
    items: list[Campaign]
    next_cursor: str | None


class CampaignListQuery(PageQuery):
    when: Literal["upcoming", "past"] = "upcoming"


class Estimate(BaseModel):
    recipients: int | None = Field(description="People it reaches now; null with `error`")
    error: str | None
    merge_issues: int = Field(description="Personalized: rows that get no text")


# -- audience --------------------------------------------------------------------------------------
class SegmentOut(BaseModel):
    id: int
    name: str
    description: str
    raw_sql: bool
    created_at: datetime | None = None


class SegmentList(BaseModel):
    items: list[SegmentOut]
    next_cursor: str | None


class SegmentCount(BaseModel):
    id: int
    eligible_contacts: int = Field(description="People it selects who may be sent to")
    purpose: Literal["campaign", "broadcast"]


class SegmentCountQuery(Strict):
    purpose: Literal["campaign", "broadcast"] = "campaign"


class Contact(BaseModel):
    id: int
    phone: str
    name: str | None
    email: str | None
    zip_code: str | None
    attributes: dict[str, Any]
    unsubscribed: bool
    unsubscribed_at: datetime | None
    unsubscribe_reason: str | None
    excluded: bool
    excluded_at: datetime | None
    exclude_reason: str | None
    source: str
    created_at: datetime | None


class ContactQuery(Strict):
    phone: str = Field(min_length=1, max_length=40, description="Any format: (313) 555-1234, +1…")


class ContactPatch(Strict):
    name: str | None = Field(None, max_length=500)
    email: str | None = Field(None, max_length=500)
    zip_code: str | None = Field(None, max_length=50)
    attributes: dict[str, str] | None = Field(None, max_length=100)


class SubscriptionChange(Strict):
    reason: str = Field(min_length=1, max_length=500, description="Why, for the audit log")


class SubscriptionResult(BaseModel):
    contact: Contact
    cancelled_messages: int


class TimelineItem(BaseModel):
    at: datetime
    direction: Literal["in", "out"]
    body: str
    status: str
    detail: str
    send: str
    due: bool


class Timeline(BaseModel):
    contact_id: int
    items: list[TimelineItem]


class Message(BaseModel):
    id: int
    broadcast_id: int | None
    campaign_id: int | None
    contact_id: int
    phone: str
    step: Literal["first", "second"]
    body: str
    status: str
    provider_sid: str | None
    provider_status: str | None
    error_code: str | None
    error_message: str | None
    attempts: int
    scheduled_for: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    sms_segments: int
    cancel_reason: str | None


class Upload(BaseModel):
    id: int
    filename: str
    purpose: str
    status: str
    progress: int
    total_rows: int
    valid_rows: int
    invalid_rows: int
    duplicate_rows: int
    unsubscribed_rows: int
    created_count: int
    updated_count: int
    columns: list[str]
    phone_column: str | None
    error_message: str | None
    started_at: datetime | None
    finished_at: datetime | None


class UploadIssue(BaseModel):
    model_config = ConfigDict(extra="allow")
    row: int
    kind: str
    message: str


class UploadReport(BaseModel):
    upload: Upload
    issues: list[UploadIssue]
    page: int
    pages: int


class ReportQuery(Strict):
    page: int = Field(1, ge=1, le=100_000)


CampaignCreated.model_rebuild()
