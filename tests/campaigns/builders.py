"""Campaign inputs and uploads for the campaign tests: one of each kind, on crafted rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.campaigns.services import CampaignInput
from app.extensions import db
from app.models import CampaignTarget, Contact, Segment, Upload, UploadPurpose, utcnow
from tests.factories import SegmentFactory, UploadFactory, upload_rows

ZONE = "America/Detroit"
EVERYONE_RULE: dict[str, Any] = {"all": []}


def everyone() -> Segment:
    """The segment of every (eligible) contact, made once per test."""
    found = db.session.scalar(sa.select(Segment).where(Segment.name == "Everyone"))
    return found or SegmentFactory(name="Everyone", rule=EVERYONE_RULE)


def soon() -> datetime:
    return utcnow() + timedelta(hours=2)


def segments_input(include, exclude=(), **fields: Any) -> CampaignInput:
    """A segments-and-labels campaign; `include`/`exclude` are lists of condition lists."""
    return CampaignInput(
        **{
            "first_message": "A note from the newsroom",
            "target_kind": CampaignTarget.SEGMENTS.value,
            "targeting": {"include": list(include), "exclude": list(exclude)},
            "run_at": soon(),
            **fields,
        }
    )


def seg(segment: Segment) -> dict[str, Any]:
    return {"type": "segment", "segment_id": segment.id}


def lab(label, since: str | None = None) -> dict[str, Any]:
    return {"type": "label", "label_id": label.id, "since": since}


def list_upload(contacts: list[Contact]) -> Upload:
    """An imported list of numbers (no message column)."""
    upload = UploadFactory(
        done=True, purpose=UploadPurpose.CAMPAIGN_LIST, columns=["phone", "name"]
    )
    upload_rows(upload, [(c, {"name": c.name or ""}) for c in contacts])
    return upload


def list_input(upload: Upload, **fields: Any) -> CampaignInput:
    return CampaignInput(
        **{
            "first_message": "A note from the newsroom",
            "target_kind": CampaignTarget.UPLOADED_LIST.value,
            "upload_id": upload.id,
            "run_at": soon(),
            **fields,
        }
    )


PERSONAL_COLUMNS = ["Phone", "First Name", "Place", "message"]


def personalized_upload(rows: list[tuple[Contact, dict[str, str]]]) -> Upload:
    """An imported personalized file: columns Phone, First Name, Place, message; each row's
    data as given (empty values are left out, as the import does)."""
    upload = UploadFactory(
        done=True,
        purpose=UploadPurpose.PERSONALIZED,
        columns=PERSONAL_COLUMNS,
        phone_column="Phone",
    )
    upload_rows(upload, rows)
    return upload


def personalized_input(upload: Upload, **fields: Any) -> CampaignInput:
    return CampaignInput(
        **{
            "first_message": "Hi {first name}, vote at {place}.",
            "second_message": "",
            "target_kind": CampaignTarget.PERSONALIZED.value,
            "upload_id": upload.id,
            "message_source": "template",
            "run_at": soon(),
            **fields,
        }
    )
