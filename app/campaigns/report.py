"""What a campaign's page reports besides its figures: how soon a scheduled campaign starts, and
which rows of its file got no text, and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.campaigns.personalize import parse_template

# The start's own rules (a merge field has a value, a text's length as rendered), so each
# reason here is the one the start applied.
from app.campaigns.services import (
    MAX_MESSAGE_LENGTH,
    field_present,
    merge_columns,
    text_length,
)
from app.extensions import db
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTarget,
    Contact,
    OutboundMessage,
    Step,
    Upload,
    UploadContact,
)

# A scheduled campaign this close to its run time (or past it) watches for its start.
START_SOON = timedelta(minutes=15)


@dataclass(frozen=True)
class StartCountdown:
    """A scheduled campaign about to start: its run time and how far off it is."""

    run_at: datetime
    seconds: float  # until the run time; zero or less once it has passed

    @property
    def due(self) -> bool:
        return self.seconds <= 0

    @property
    def words(self) -> str:
        """ "in about a minute", "in about 12 minutes"; only for a run time still ahead."""
        if self.seconds < 45:
            return "in less than a minute"
        if self.seconds < 90:
            return "in about a minute"
        return f"in about {round(self.seconds / 60)} minutes"


def start_countdown(campaign: Campaign, *, now: datetime) -> StartCountdown | None:
    """The countdown of a scheduled campaign whose run time is within START_SOON or has passed
    (the tick starts it within a minute); None for any other campaign."""
    if campaign.status is not CampaignStatus.SCHEDULED or campaign.run_at is None:
        return None
    seconds = (campaign.run_at - now).total_seconds()
    if seconds > START_SOON.total_seconds():
        return None
    return StartCountdown(campaign.run_at, seconds)


# -- the rows of the file that got no text -----------------------------------------------------
@dataclass(frozen=True)
class RowNotSent:
    row: int  # the row number in the file
    contact_id: int
    phone: str
    reason: str  # "unsubscribed", "excluded", "no value for {place}", ...


@dataclass(frozen=True)
class RowsNotSent:
    count: int
    rows: list[RowNotSent]  # the first `limit`, in file order
    reasons: list[tuple[str, int]]  # each reason with its count, the most frequent first


def _reason(campaign: Campaign, upload: Upload) -> sa.ColumnElement[str]:
    """Why a row of the file is not a recipient, as the start decides it: unsubscribed and
    excluded people first, then (personalized) the first merge field without a value (or an
    empty message), then a text too long for one message body."""
    whens: list[tuple[sa.ColumnElement[bool], str]] = [
        (Contact.unsubscribed.is_(True), "unsubscribed"),
        (Contact.excluded.is_(True), "excluded"),
    ]
    if campaign.target_kind is CampaignTarget.PERSONALIZED:
        template = None
        if campaign.message_column:
            message = UploadContact.message
            whens.append(
                (
                    sa.or_(message.is_(None), sa.func.trim(message) == ""),
                    f"no text in the “{campaign.message_column}” column",
                )
            )
        else:
            template = parse_template(campaign.first_message, merge_columns(upload))
            whens.extend(
                (sa.not_(field_present(name)), f"no value for {{{name}}}")
                for name in template.names
            )
        whens.append(
            (
                text_length(template) > MAX_MESSAGE_LENGTH,
                f"text longer than {MAX_MESSAGE_LENGTH:,} characters",
            )
        )
    # Eligible with every value, yet no first message: eligibility changed since the start
    # (someone unsubscribed then subscribed again, say).
    return sa.case(*whens, else_="not eligible when it started")


def rows_not_sent(campaign: Campaign, limit: int = 20) -> RowsNotSent | None:
    """The rows of a started list or personalized campaign's upload (its `UploadContact`s)
    without a first message in this campaign, with the reason: how many, the first `limit` in
    file order, and the count of each reason. None for a segments campaign. The upload's own
    invalid and duplicate rows were never imported and are not among them (its report lists
    them)."""
    if campaign.target_kind is CampaignTarget.SEGMENTS or campaign.upload_id is None:
        return None
    upload = db.session.get(Upload, campaign.upload_id)
    if upload is None:
        return None
    m = OutboundMessage
    texted = (
        sa.select(m.id)
        .where(
            m.campaign_id == campaign.id,
            m.contact_id == UploadContact.contact_id,
            m.step == Step.FIRST,
        )
        .exists()
    )
    reason = _reason(campaign, upload).label("reason")
    base = (
        sa.select(UploadContact.row_number, UploadContact.contact_id, Contact.phone, reason)
        .join(Contact, Contact.id == UploadContact.contact_id)
        .where(UploadContact.upload_id == upload.id, ~texted)
    )
    found = base.subquery()
    counted = db.session.execute(
        sa.select(found.c.reason, sa.func.count())
        .group_by(found.c.reason)
        .order_by(sa.func.count().desc(), found.c.reason)
    ).all()
    reasons = [(str(r), int(n)) for r, n in counted]
    rows = [
        RowNotSent(r.row_number, r.contact_id, r.phone, r.reason)
        for r in db.session.execute(base.order_by(UploadContact.row_number).limit(limit))
    ]
    return RowsNotSent(sum(n for _, n in reasons), rows, reasons)
