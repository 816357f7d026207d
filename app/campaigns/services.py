"""Campaigns (SPEC 5): checking and saving one, who it reaches (the one code path the estimate, the
confirmation and the start share), starting due ones in the tick, and the queries its pages show.

Services take plain values: settings come in as arguments from the boundary (`zone`, `rate`,
`window`, `catch_up_minutes`), never from `current_app`. They add and flush; the route, job or
command commits (start_campaign and run_due_campaigns commit themselves: a start is one
transaction that must land before sending is enqueued).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.audit.services import record_audit
from app.campaigns.personalize import Template, parse_template
from app.campaigns.targeting import describe_targeting, segments_select, validate_targeting
from app.extensions import db
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTarget,
    Contact,
    MissiveLabel,
    Upload,
    UploadContact,
    UploadPurpose,
    UploadStatus,
    User,
    utcnow,
)
from app.segments.services import Audience, eligibility_clause
from app.sending.outbound import insert_first_messages
from app.sending.quiet import clock, inside, quiet_warning, window_label
from app.sending.sms import count_sms
from app.sends.stats import initial_stats, store_stats
from app.validation import ValidationError

log = logging.getLogger(__name__)
MAX_MESSAGE_LENGTH = 1600  # Twilio's limit for one message body
MAX_TITLE_LENGTH = 200
MAX_LABEL_LENGTH = 100
MAX_DELAY_SECONDS = 7 * 24 * 3600
MAX_DAYS_AHEAD = 60
MAX_ID = 2**31 - 1  # ids are PostgreSQL integers
SEND_NOW_AFTER = timedelta(minutes=1)  # "send now" runs in a minute: time to take it back
PREVIEW_ROWS = 5
MERGE_ISSUES_SHOWN = 50
EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
MESSAGE_SOURCES = ("template", "column")  # personalized: a {column} template, or a message column
MERGE_FIELD = re.compile(r"\{[^{}]+\}")


# -- what an operator submits ------------------------------------------------------------------
@dataclass
class CampaignInput:
    """A campaign as submitted by a form, the API or the sidebar: plain strings and values,
    checked by `check_campaign`."""

    title: str = ""
    first_message: str = ""
    second_message: str = ""
    delay_seconds: int | str = 600
    target_kind: str = CampaignTarget.SEGMENTS.value
    targeting: dict[str, Any] = field(default_factory=lambda: {"include": [], "exclude": []})
    upload_id: int | str | None = None
    message_source: str = "template"  # personalized only
    missive_label_name: str = ""
    run_at: datetime | None = None  # aware; None with send_now False keeps a draft undated
    send_now: bool = False


@dataclass(frozen=True)
class CheckedCampaign:
    title: str
    first_message: str
    second_message: str | None
    delay_seconds: int
    target_kind: CampaignTarget
    targeting: dict[str, Any]
    upload_id: int | None
    message_column: str | None
    missive_label_name: str | None
    run_at: datetime | None


def _message(text: str | None, field: str, *, required: bool, what: str) -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise ValidationError(f"Write the {what}.", field)
    if "\x00" in text:
        raise ValidationError("The text contains a NUL character: remove it.", field)
    if len(text) > MAX_MESSAGE_LENGTH:
        raise ValidationError(
            f"A message can be at most {MAX_MESSAGE_LENGTH:,} characters ({len(text):,} now).",
            field,
        )
    return text


def _delay(value: int | str) -> int:
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ValidationError("The delay is a whole number of minutes.", "delay_seconds")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("The delay cannot be negative.", "delay_seconds")
    if value > MAX_DELAY_SECONDS:
        raise ValidationError("The delay can be at most 7 days.", "delay_seconds")
    return value


def check_run_at(run_at: datetime | None, *, now: datetime, zone: str) -> None:
    """A run time is in the future and at most 60 days ahead (said in the org's time)."""
    if run_at is None:
        return
    if run_at.tzinfo is None:
        raise ValidationError("The run time needs a time zone.", "run_at")
    if run_at <= now:
        local = now.astimezone(ZoneInfo(zone))
        raise ValidationError(
            f"Choose a time in the future (it is now {local:%b %-d}, {clock(local.time())}).",
            "run_at",
        )
    if run_at > now + timedelta(days=MAX_DAYS_AHEAD):
        raise ValidationError(f"Choose a time within the next {MAX_DAYS_AHEAD} days.", "run_at")


def campaign_upload(upload_id: int | str | None, kind: CampaignTarget) -> Upload:
    """The imported upload a list or personalized campaign sends to; ValidationError otherwise."""
    if isinstance(upload_id, str):
        upload_id = int(upload_id) if upload_id.strip().isdigit() else None
    if not upload_id:
        raise ValidationError("Upload a CSV file first.", "upload_id")
    # An id past the column's range is no upload (and must not reach the database as one).
    upload = db.session.get(Upload, upload_id) if 0 < upload_id <= MAX_ID else None
    wanted = (
        (UploadPurpose.CAMPAIGN_LIST, UploadPurpose.PERSONALIZED)
        if kind is CampaignTarget.UPLOADED_LIST
        else (UploadPurpose.PERSONALIZED, UploadPurpose.CAMPAIGN_LIST)
    )
    if upload is None or upload.purpose not in wanted:
        raise ValidationError("That file is not a campaign upload: upload it here.", "upload_id")
    if upload.status is UploadStatus.FAILED:
        raise ValidationError(
            f"The file could not be read ({upload.error_message or 'failed'}): upload it again.",
            "upload_id",
        )
    if upload.status is UploadStatus.VALIDATED:
        raise ValidationError(
            "The file is checked: import its valid rows (Import, under its report) to use it.",
            "upload_id",
        )
    if upload.status is not UploadStatus.DONE:
        raise ValidationError(
            "The file is still being checked or imported: wait until its report is ready.",
            "upload_id",
        )
    return upload


def campaign_upload_purpose(target_kind: str, message_source: str) -> UploadPurpose:
    """What a campaign's CSV is checked as: a personalized file whose texts are in a message
    column needs that column; every other campaign file is a list of phones (with columns)."""
    if target_kind == CampaignTarget.PERSONALIZED.value and message_source == "column":
        return UploadPurpose.PERSONALIZED
    return UploadPurpose.CAMPAIGN_LIST


def upload_has_message_column(upload: Upload) -> bool:
    return upload.purpose is UploadPurpose.PERSONALIZED


def merge_columns(upload: Upload | None) -> list[str]:
    """The columns a template may name: every column but the phone, which the import keeps on
    the contact and not in the row's `data` (so `{phone}` would be empty on every row)."""
    if upload is None:
        return []
    return [c for c in upload.columns if c != upload.phone_column]


def check_campaign(values: CampaignInput, *, now: datetime, zone: str) -> CheckedCampaign:
    """Every field checked, in the order the form shows them; the first problem raises a
    ValidationError naming its field. Writes nothing."""
    title = " ".join((values.title or "").split())
    if len(title) > MAX_TITLE_LENGTH:
        raise ValidationError(f"A title can be at most {MAX_TITLE_LENGTH} characters.", "title")
    try:
        kind = CampaignTarget(values.target_kind)
    except ValueError:
        raise ValidationError(
            "Choose who receives it: segments and labels, an uploaded list, or personalized rows.",
            "target_kind",
        ) from None
    targeting: dict[str, Any] = {"include": [], "exclude": []}
    upload_id = None
    message_column = None
    if kind is CampaignTarget.SEGMENTS:
        targeting = validate_targeting(values.targeting)
    else:
        upload = campaign_upload(values.upload_id, kind)
        upload_id = upload.id
    first_required = True
    if kind is CampaignTarget.PERSONALIZED:
        source = values.message_source if values.message_source in MESSAGE_SOURCES else "template"
        if source == "column":
            if not upload_has_message_column(upload):
                raise ValidationError(
                    "This file has no message column: write a template with {column} fields, "
                    "or upload a file with a column named “message”.",
                    "message_source",
                )
            message_column = "message"
            first_required = False
    first = _message(
        values.first_message, "first_message", required=first_required, what="first message"
    )
    if kind is CampaignTarget.PERSONALIZED and message_column is None:
        parse_template(first, merge_columns(upload), field="first_message")
    elif message_column is not None:
        first = ""
    second = _message(values.second_message, "second_message", required=False, what="follow-up")
    if kind is CampaignTarget.PERSONALIZED and MERGE_FIELD.search(second):
        # The follow-up is one text for everyone: a {field} in it would go out as written.
        raise ValidationError(
            "The follow-up is the same text for everyone: merge fields such as {column} are "
            "filled only in the first message.",
            "second_message",
        )
    delay = _delay(values.delay_seconds)
    label = " ".join((values.missive_label_name or "").split())
    if "/" in label:
        raise ValidationError(
            "A label name cannot contain “/” (Missive uses it for nesting).", "missive_label_name"
        )
    if len(label) > MAX_LABEL_LENGTH:
        raise ValidationError(
            f"A label name can be at most {MAX_LABEL_LENGTH} characters.", "missive_label_name"
        )
    run_at = now + SEND_NOW_AFTER if values.send_now else values.run_at
    if not values.send_now:
        check_run_at(run_at, now=now, zone=zone)
    return CheckedCampaign(
        title=title,
        first_message=first,
        second_message=second or None,
        delay_seconds=delay,
        target_kind=kind,
        targeting=targeting,
        upload_id=upload_id,
        message_column=message_column,
        missive_label_name=label or None,
        run_at=run_at,
    )


# -- who it reaches: the one code path ---------------------------------------------------------
@dataclass
class Recipients:
    """The contacts a campaign reaches now, in id order, and their texts when personalized."""

    contact_ids: list[int]
    bodies: list[str] | None = None  # personalized: one per contact

    def __len__(self) -> int:
        return len(self.contact_ids)


def _template(campaign: Campaign | CheckedCampaign) -> Template | None:
    if campaign.target_kind is not CampaignTarget.PERSONALIZED or campaign.message_column:
        return None
    upload = db.session.get(Upload, campaign.upload_id)
    return parse_template(campaign.first_message, merge_columns(upload))


def field_present(name: str) -> sa.ColumnElement[bool]:
    value = UploadContact.data[name].as_string()
    return sa.and_(value.is_not(None), sa.func.trim(value) != "")


def _upload_rows(campaign: Campaign | CheckedCampaign, template: Template | None):
    """`(contact_id, message, data)` of the eligible rows of the campaign's upload, with every
    merge field (or the message) filled in."""
    query = (
        sa.select(UploadContact.contact_id, UploadContact.message, UploadContact.data)
        .join(Contact, Contact.id == UploadContact.contact_id)
        .where(UploadContact.upload_id == campaign.upload_id, eligibility_clause(Audience.CAMPAIGN))
    )
    if campaign.target_kind is CampaignTarget.PERSONALIZED:
        query = query.where(_personalized_ok(template))
    return query


def text_length(template: Template | None) -> sa.ColumnElement[int]:
    """The length of a row's text as it will be sent, counted in SQL (values are stored
    trimmed, so this is the rendered length)."""
    if template is None:
        return sa.func.length(sa.func.trim(UploadContact.message))
    literal = sum(len(part) for part in template.parts)
    lengths = [
        sa.func.coalesce(sa.func.length(UploadContact.data[name].as_string()), 0)
        for name in template.fields
    ]
    return sa.literal(literal) + sum(lengths, sa.literal(0))


def _personalized_ok(template: Template | None) -> sa.ColumnElement[bool]:
    """A personalized row gets a text: its message (or every merge field) is there, and the
    text fits one message body (Twilio refuses more than 1,600 characters)."""
    if template is None:
        message = UploadContact.message
        present = sa.and_(message.is_not(None), sa.func.trim(message) != "")
    else:
        present = sa.and_(
            sa.true(), *(field_present(name) for name in dict.fromkeys(template.fields))
        )
    return sa.and_(present, text_length(template) <= MAX_MESSAGE_LENGTH)


def recipients_select(
    campaign: Campaign | CheckedCampaign, *, now: datetime, zone: str
) -> sa.Select:
    """The query behind both the estimate and the start: eligible contacts (SPEC 3.2: never
    unsubscribed or excluded; upload-only contacts are allowed), once each; for uploads, their
    rows. ValidationError if a segment of the target no longer works."""
    if campaign.target_kind is CampaignTarget.SEGMENTS:
        return segments_select(campaign.targeting, now=now, zone=zone)
    return _upload_rows(campaign, _template(campaign))


def _without_jit() -> None:
    """PostgreSQL plans the recipients query as costly (label and segment EXISTS inside OR) and
    would JIT-compile it: ~200 ms of compiling for a query that runs in less (the live
    estimate's wait, bench.campaign_estimate). Off for this transaction only."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL jit = off"))


def count_recipients(campaign: Campaign | CheckedCampaign, *, now: datetime, zone: str) -> int:
    query = recipients_select(campaign, now=now, zone=zone)
    db.session.flush()
    _without_jit()
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def resolve_recipients(
    campaign: Campaign | CheckedCampaign, *, now: datetime, zone: str
) -> Recipients:
    """Who starting now reaches, and (personalized) each one's text."""
    query = recipients_select(campaign, now=now, zone=zone)
    db.session.flush()
    _without_jit()
    connection = db.session.connection()
    if campaign.target_kind is CampaignTarget.SEGMENTS:
        ids = list(connection.execute(query.order_by(Contact.id)).scalars())
        return Recipients(ids)
    template = _template(campaign)
    if template is not None and template.fields:
        # Only the merge fields, as text: decoding each row's JSON would cost more than the
        # rendering itself.
        query = query.with_only_columns(
            UploadContact.contact_id,
            *(UploadContact.data[name].as_string() for name in template.names),
            maintain_column_froms=True,
        )
        rows = connection.execute(query.order_by(UploadContact.contact_id)).all()
        render = template.render_values
        return Recipients([row[0] for row in rows], [render(row[1:]) for row in rows])
    rows = connection.execute(query.order_by(UploadContact.contact_id)).all()
    ids = [row.contact_id for row in rows]
    if campaign.target_kind is CampaignTarget.UPLOADED_LIST:
        return Recipients(ids)
    if template is None:
        return Recipients(ids, [row.message.strip() for row in rows])
    return Recipients(ids, [template.render({}) for _ in rows])


def _as_dict(data: Any) -> dict[str, str]:
    if isinstance(data, dict):
        return data
    return json.loads(data) if data else {}


@dataclass(frozen=True)
class MergeIssues:
    """Personalized rows that get no text: which field had no value, row by row."""

    count: int
    rows: list[dict[str, Any]]  # {"row", "phone", "message"} for the first few


def merge_issues(campaign: Campaign | CheckedCampaign) -> MergeIssues:
    """The eligible rows of a personalized campaign that get no text, and why: a merge field
    without a value ("no value for {place}"), or a text longer than one message body."""
    if campaign.target_kind is not CampaignTarget.PERSONALIZED:
        return MergeIssues(0, [])
    template = _template(campaign)
    length = text_length(template).label("text_length")
    base = (
        sa.select(
            UploadContact.row_number,
            Contact.phone,
            UploadContact.data,
            UploadContact.message,
            length,
        )
        .join(Contact, Contact.id == UploadContact.contact_id)
        .where(
            UploadContact.upload_id == campaign.upload_id,
            eligibility_clause(Audience.CAMPAIGN),
            sa.not_(sa.func.coalesce(_personalized_ok(template), False)),
        )
    )
    count = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    rows = []
    for row in db.session.execute(
        base.order_by(UploadContact.row_number).limit(MERGE_ISSUES_SHOWN)
    ):
        rows.append({"row": row.row_number, "phone": row.phone, "message": _issue(template, row)})
    return MergeIssues(count, rows)


def _issue(template: Template | None, row: Any) -> str:
    if template is not None and (name := template.missing(_as_dict(row.data))):
        return f"no value for {{{name}}}"
    if template is None and not (row.message or "").strip():
        return "no message"
    return (
        f"text too long ({row.text_length or 0:,} characters; a text can be at most "
        f"{MAX_MESSAGE_LENGTH:,})"
    )


@dataclass(frozen=True)
class Estimate:
    recipients: int | None
    error: str | None = None
    merge_issues: int = 0


def estimate(values: CampaignInput, *, now: datetime, zone: str) -> Estimate:
    """The live estimate while an operator edits: how many people the target reaches now, or
    what to fix first. The same query the start runs, so on unchanged data they agree."""
    try:
        checked = check_target(values)
        issues = (
            merge_issues(checked).count if checked.target_kind is CampaignTarget.PERSONALIZED else 0
        )
        return Estimate(count_recipients(checked, now=now, zone=zone), merge_issues=issues)
    except ValidationError as exc:
        return Estimate(None, exc.message)


def check_target(values: CampaignInput) -> CheckedCampaign:
    """Only the target part of a submission (for the estimate): the rest may still be empty."""
    probe = CampaignInput(
        first_message=values.first_message if (values.first_message or "").strip() else "x",
        target_kind=values.target_kind,
        targeting=values.targeting,
        upload_id=values.upload_id,
        message_source=values.message_source,
        send_now=True,
    )
    return check_campaign(probe, now=utcnow(), zone="UTC")


# -- the confirmation --------------------------------------------------------------------------
@dataclass(frozen=True)
class MessagePreview:
    label: str  # "First message", "Row 2 (+13135550101)"
    body: str
    encoding: str
    characters: int
    segments: int
    non_gsm: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """What the confirmation shows before scheduling."""

    recipients: int
    messages: list[MessagePreview]
    first_segments: int  # SMS segments of all first messages (the cost)
    follow_up_segments: int  # if nobody replies, each recipient's follow-up too
    ucs2_rows: int  # personalized: texts that need UCS-2
    longest: MessagePreview | None  # personalized: the longest text
    duration_seconds: float  # first messages at SEND_RATE_MPS
    warnings: list[str]
    merge_issues: MergeIssues

    @property
    def total_segments(self) -> int:
        return self.first_segments + self.follow_up_segments


def _message_preview(label: str, body: str) -> MessagePreview:
    count = count_sms(body)
    return MessagePreview(
        label, body, count.encoding, count.characters, count.segments, count.non_gsm
    )


def duration_words(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes / 60
    return f"about {hours:.1f} hours"


def preview_campaign(
    campaign: Campaign | CheckedCampaign,
    *,
    now: datetime,
    zone: str,
    rate: float,
    window: tuple[time, time] | None,
) -> Preview:
    """Recipients, the texts as they will read, the SMS segments they cost, how long sending
    takes at `rate` segments per second, and what quiet hours will do to it."""
    recipients = resolve_recipients(campaign, now=now, zone=zone)
    count = len(recipients)
    messages: list[MessagePreview] = []
    ucs2 = 0
    longest = None
    if recipients.bodies is None:
        first = _message_preview("First message", campaign.first_message)
        messages.append(first)
        first_segments = first.segments * count
    else:
        phones = dict(
            db.session.execute(
                sa.select(Contact.id, Contact.phone).where(
                    Contact.id.in_(recipients.contact_ids[:PREVIEW_ROWS])
                )
            ).all()
        )
        first_segments = 0
        longest_body = ""
        for body in recipients.bodies:
            counted = count_sms(body)
            first_segments += counted.segments
            ucs2 += counted.encoding == "UCS-2"
            if len(body) > len(longest_body):
                longest_body = body
        for cid, body in zip(
            recipients.contact_ids[:PREVIEW_ROWS], recipients.bodies, strict=False
        ):
            messages.append(_message_preview(phones.get(cid, ""), body))
        longest = _message_preview("Longest text", longest_body) if count else None
    follow_up_segments = 0
    if campaign.second_message:
        second = _message_preview("Follow-up (unless they reply)", campaign.second_message)
        messages.append(second)
        follow_up_segments = second.segments * count
    duration = first_segments / rate if rate > 0 else 0.0
    start = campaign.run_at or now
    warnings = []
    if warning := quiet_warning(start, zone, window):
        warnings.append(warning)
    elif window is not None and count:
        end = (start + timedelta(seconds=duration)).astimezone(ZoneInfo(zone))
        if not inside(end.time(), window) or end.date() != start.astimezone(ZoneInfo(zone)).date():
            warnings.append(
                f"Sending takes {duration_words(duration)}: it runs past the end of the sending "
                f"window ({window_label(window)}), so the rest wait until {clock(window[0])} "
                "the next day."
            )
    issues = (
        merge_issues(campaign)
        if campaign.target_kind is CampaignTarget.PERSONALIZED
        else MergeIssues(0, [])
    )
    return Preview(
        recipients=count,
        messages=messages,
        first_segments=first_segments,
        follow_up_segments=follow_up_segments,
        ucs2_rows=ucs2,
        longest=longest,
        duration_seconds=duration,
        warnings=warnings,
        merge_issues=issues,
    )


# -- saving, deleting --------------------------------------------------------------------------
def _label(name: str | None) -> tuple[str | None, list[str]]:
    """The label's state and ids: found among mirrored labels (case-insensitively) → ready;
    not found → pending (a job creates it in Missive); none asked → None."""
    if not name:
        return None, []
    found = db.session.scalar(
        sa.select(MissiveLabel.missive_id)
        .where(sa.func.lower(MissiveLabel.name) == name.lower())
        .order_by(MissiveLabel.id)
        .limit(1)
    )
    return ("ready", [found]) if found else ("pending", [])


def label_preview(name: str) -> str | None:
    """ "exists" or "will be created" for a label name, None for none."""
    state, _ = _label(" ".join((name or "").split()) or None)
    return None if state is None else ("exists" if state == "ready" else "will be created")


def save_campaign(
    campaign: Campaign | None,
    values: CampaignInput,
    *,
    schedule: bool,
    user: User | None,
    now: datetime,
    zone: str,
    ip_address: str | None = None,
) -> Campaign:
    """Create (campaign=None) or edit a draft or scheduled campaign, audited. `schedule` makes
    it `scheduled` (it then needs a run time, or send now); otherwise it is kept as a draft.
    Everything is checked first: a problem raises ValidationError and changes nothing. The
    caller commits, then enqueues `ensure_campaign_label` when `label_state` is "pending"."""
    if campaign is not None:
        lock_unstarted(campaign, "This campaign has started: it can no longer be changed.")
    checked = check_campaign(values, now=now, zone=zone)
    if schedule and checked.run_at is None:
        raise ValidationError("Choose when to send it, or “Send now”.", "run_at")
    creating = campaign is None
    # Counted and looked up before anything changes: a target that no longer works (a raw SQL
    # segment failing) refuses with nothing changed, and a new campaign is not flushed
    # half-filled by these queries.
    estimated = count_recipients(checked, now=now, zone=zone)
    relabel = creating or checked.missive_label_name != campaign.missive_label_name
    label = _label(checked.missive_label_name) if relabel else None
    if campaign is None:
        campaign = Campaign(created_by_id=user.id if user else None)
        db.session.add(campaign)
    if label is not None:
        campaign.label_state, campaign.missive_label_ids = label
        campaign.label_error = None
        campaign.label_attempts = 0
    campaign.title = checked.title
    campaign.first_message = checked.first_message
    campaign.second_message = checked.second_message
    campaign.delay_seconds = checked.delay_seconds
    campaign.target_kind = checked.target_kind
    campaign.targeting = checked.targeting
    campaign.upload_id = checked.upload_id
    campaign.message_column = checked.message_column
    campaign.missive_label_name = checked.missive_label_name
    campaign.run_at = checked.run_at
    campaign.status = CampaignStatus.SCHEDULED if schedule else CampaignStatus.DRAFT
    campaign.status_note = None
    campaign.estimated_recipients = estimated
    db.session.flush()
    when = (
        f" for {checked.run_at.astimezone(ZoneInfo(zone)):%b %-d, %Y %-I:%M %p %Z}"
        if schedule
        else " as a draft"
    )
    record_audit(
        "campaign.create" if creating else "campaign.update",
        user=user,
        obj=campaign,
        summary=f"{'Created' if creating else 'Saved'} campaign {campaign.id}{when}",
        details={"kind": checked.target_kind.value, "targeting": checked.targeting},
        ip_address=ip_address,
    )
    return campaign


def lock_unstarted(campaign: Campaign, refusal: str) -> None:
    """Lock the campaign's row and read it afresh; ValidationError(refusal) once it has started.
    The page loaded it earlier: the tick may have started it since, and its claim (a
    conditional update) now waits for this transaction, so the change cannot undo a start."""
    db.session.refresh(campaign, with_for_update=True)
    if campaign.status not in EDITABLE or campaign.started_at is not None:
        raise ValidationError(refusal)


def delete_campaign(
    campaign: Campaign, *, user: User | None, ip_address: str | None = None
) -> None:
    """Delete a campaign that has not started; ValidationError otherwise. Audited."""
    lock_unstarted(campaign, "This campaign has started: it can be cancelled, not deleted.")
    record_audit(
        "campaign.delete",
        user=user,
        obj=campaign,
        summary=f"Deleted campaign {campaign.id} ({campaign.title or 'untitled'})",
        ip_address=ip_address,
    )
    db.session.delete(campaign)
    db.session.flush()


def unschedule_campaign(
    campaign: Campaign, *, user: User | None, ip_address: str | None = None
) -> None:
    """A scheduled campaign back to draft (it will not start); ValidationError once started."""
    lock_unstarted(campaign, "This campaign has started: it can be cancelled, not unscheduled.")
    if campaign.status is not CampaignStatus.SCHEDULED:
        raise ValidationError("Only a scheduled campaign can be unscheduled.")
    campaign.status = CampaignStatus.DRAFT
    record_audit(
        "campaign.unschedule",
        user=user,
        obj=campaign,
        summary=f"Unscheduled campaign {campaign.id}",
        ip_address=ip_address,
    )
    db.session.flush()


# -- starting ----------------------------------------------------------------------------------
def start_campaign(
    campaign_id: int, *, now: datetime | None = None, user: User | None = None, zone: str
) -> Campaign | None:
    """Start a scheduled campaign: claim it (one conditional update, so racing ticks start it
    once), resolve its recipients with eligibility, write their first messages and store the
    actual count and first figures, in one transaction; commits. None when it was not
    scheduled any more (started elsewhere, unscheduled, deleted).

    A target that no longer works (a raw SQL segment that fails, a deleted upload) puts the
    campaign back to draft with the reason in `status_note` and raises ValidationError. The
    caller enqueues sending (and the label job) after this returns.
    """
    now = now or utcnow()
    claimed = db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SCHEDULED)
        .values(
            status=CampaignStatus.SENDING, started_at=now, started_by_id=user.id if user else None
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return None
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    try:
        recipients = resolve_recipients(campaign, now=now, zone=zone)
    except ValidationError as exc:
        db.session.rollback()
        note = f"Not started at {now:%Y-%m-%d %H:%M} UTC: {exc.message}"
        db.session.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SCHEDULED)
            .values(status=CampaignStatus.DRAFT, status_note=note)
        )
        record_audit(
            "campaign.failed_start",
            user=user,
            actor=None if user else "schedule",
            object_type="campaign",
            object_id=campaign_id,
            summary=note,
        )
        db.session.commit()
        raise ValidationError(f"The campaign could not start: {exc.message}") from exc
    created = insert_first_messages(
        campaign,
        recipients.contact_ids,
        None,
        recipients.bodies if recipients.bodies is not None else campaign.first_message,
        now=now,
    )
    campaign.actual_recipients = created
    store_stats(campaign, initial_stats(created), now)
    if created == 0:
        campaign.status = CampaignStatus.SENT
        campaign.finished_at = now
        campaign.status_note = "Nobody was eligible when it started, so nothing was sent."
    record_audit(
        "campaign.start",
        user=user,
        actor=None if user else "schedule",
        object_type="campaign",
        object_id=campaign.id,
        summary=f"Campaign {campaign.id} started with {created:,} recipients",
    )
    db.session.commit()
    return campaign


def run_due_campaigns(
    *, zone: str, catch_up_minutes: int, now: datetime | None = None
) -> dict[str, Any]:
    """The tick's part: start every scheduled campaign whose run time has come; one whose run
    time passed longer ago than the catch-up window goes back to draft with the reason (never
    sent late without a person saying so). Commits. Returns counts for the job run, with the
    started ids under `campaigns_started` for the caller to enqueue their label jobs."""
    now = now or utcnow()
    cutoff = now - timedelta(minutes=catch_up_minutes)
    counts: dict[str, Any] = {}
    candidates = db.session.execute(
        sa.select(Campaign.id, Campaign.run_at).where(
            Campaign.status == CampaignStatus.SCHEDULED, Campaign.run_at < cutoff
        )
    ).all()
    missed = []
    for campaign_id, run_at in candidates:
        local = run_at.astimezone(ZoneInfo(zone))
        note = (
            f"Not sent: its run time ({local:%b %-d}, {clock(local.time())}) passed more than "
            f"{catch_up_minutes} minutes before the scheduler could start it. "
            "Choose a new time to send it."
        )
        # Conditional, like the start's claim: a tick a moment ahead may have started it (its
        # window ends a little later), and a started campaign never goes back to draft.
        skipped = db.session.execute(
            sa.update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.status == CampaignStatus.SCHEDULED,
                Campaign.run_at < cutoff,
            )
            .values(status=CampaignStatus.DRAFT, status_note=note)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not skipped:
            continue
        missed.append(campaign_id)
        record_audit(
            "campaign.skipped",
            actor="schedule",
            object_type="campaign",
            object_id=campaign_id,
            summary=f"Run at {run_at:%Y-%m-%d %H:%M} UTC skipped: missed the catch-up window",
        )
    if missed:
        counts["campaigns_skipped"] = missed
    db.session.commit()
    due = db.session.scalars(
        sa.select(Campaign.id)
        .where(Campaign.status == CampaignStatus.SCHEDULED, Campaign.run_at <= now)
        .order_by(Campaign.run_at, Campaign.id)
    ).all()
    started, failed = [], []
    for campaign_id in due:
        try:
            campaign = start_campaign(campaign_id, now=now, zone=zone)
        except ValidationError:
            failed.append(campaign_id)
            continue
        if campaign is not None:
            started.append(campaign_id)
    if started:
        counts["campaigns_started"] = started
    if failed:
        counts["campaigns_failed"] = failed
    return counts


# -- what the pages show -----------------------------------------------------------------------
def is_upcoming() -> sa.ColumnElement[bool]:
    """What counts as an upcoming campaign (drafts and scheduled), for every list of them."""
    return Campaign.status.in_(EDITABLE)


def is_past() -> sa.ColumnElement[bool]:
    """What counts as a past campaign: started (sending, sent or cancelled after starting)."""
    return Campaign.started_at.is_not(None)


def upcoming_campaigns(limit: int = 50) -> list[Campaign]:
    """Drafts and scheduled campaigns, the next to run first (undated drafts last)."""
    return list(
        db.session.scalars(
            sa.select(Campaign)
            .where(is_upcoming())
            .order_by(Campaign.run_at.is_(None), Campaign.run_at, Campaign.id.desc())
            .limit(limit)
        )
    )


def next_campaign() -> Campaign | None:
    return db.session.scalar(
        sa.select(Campaign)
        .where(Campaign.status == CampaignStatus.SCHEDULED)
        .order_by(Campaign.run_at, Campaign.id)
        .limit(1)
    )


def history_query() -> sa.Select[tuple[Campaign]]:
    return (
        sa.select(Campaign)
        .where(is_past())
        .order_by(Campaign.started_at.desc(), Campaign.id.desc())
    )


def history_page(page: int, size: int) -> tuple[list[Campaign], int | None]:
    """One page of started campaigns, newest first, and the next page number (or None)."""
    rows = list(db.session.scalars(history_query().offset((page - 1) * size).limit(size + 1)))
    return rows[:size], (page + 1 if len(rows) > size else None)


def sending_campaigns() -> list[Campaign]:
    return list(
        db.session.scalars(
            sa.select(Campaign)
            .where(Campaign.status == CampaignStatus.SENDING)
            .order_by(Campaign.started_at)
        )
    )


def target_summary(campaign: Campaign) -> dict[str, Any]:
    """The target in words for the pages: groups for segments, the file for uploads."""
    if campaign.target_kind is CampaignTarget.SEGMENTS:
        return {"kind": "segments", **describe_targeting(campaign.targeting)}
    upload = db.session.get(Upload, campaign.upload_id) if campaign.upload_id else None
    return {
        "kind": campaign.target_kind.value,
        "upload": upload,
        "message_source": "column" if campaign.message_column else "template",
    }


def current_estimate(campaign: Campaign, *, now: datetime | None = None, zone: str) -> Estimate:
    """Who a saved campaign that has not started would reach now (its page), through the query
    the start runs; a target that no longer works is said, not raised."""
    try:
        issues = (
            merge_issues(campaign).count
            if campaign.target_kind is CampaignTarget.PERSONALIZED
            else 0
        )
        count = count_recipients(campaign, now=now or utcnow(), zone=zone)
    except ValidationError as exc:
        return Estimate(None, exc.message)
    return Estimate(count, merge_issues=issues)


def with_creator(query: sa.Select) -> sa.Select:
    return query.options(selectinload(Campaign.created_by))
