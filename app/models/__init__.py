"""Every model, re-exported: `from app.models import Contact, OutboundMessage`."""

from app.models.broadcast import (
    WEEKDAYS,
    Broadcast,
    BroadcastSegment,
    BroadcastStatus,
    ScheduleVersion,
)
from app.models.callback import StatusCallback
from app.models.campaign import Campaign, CampaignStatus, CampaignTarget
from app.models.contact import Contact, ContactSource, ExcludeReason
from app.models.message import (
    ACCEPTED_STATUSES,
    FAILED_STATUSES,
    FINAL_STATUSES,
    IN_FLIGHT_STATUSES,
    PENDING_STATUSES,
    POSSIBLE_OPT_OUT,
    PROBLEM_STATUSES,
    RECEIVED_STATUSES,
    UNFINISHED_STATUSES,
    InboundMessage,
    Keyword,
    MessageStatus,
    OutboundMessage,
    Step,
)
from app.models.missive import MissiveConversation, MissiveConversationLabel, MissiveLabel
from app.models.segment import Segment
from app.models.system import (
    ApiIdempotencyKey,
    ApiToken,
    AuditLog,
    JobOutcome,
    JobRun,
    Setting,
    WebhookEvent,
)
from app.models.types import UTCDateTime, utcnow
from app.models.upload import Upload, UploadContact, UploadPurpose, UploadStatus
from app.models.user import Role, User

__all__ = [
    "ACCEPTED_STATUSES",
    "FAILED_STATUSES",
    "FINAL_STATUSES",
    "IN_FLIGHT_STATUSES",
    "PENDING_STATUSES",
    "POSSIBLE_OPT_OUT",
    "PROBLEM_STATUSES",
    "RECEIVED_STATUSES",
    "UNFINISHED_STATUSES",
    "WEEKDAYS",
    "ApiIdempotencyKey",
    "ApiToken",
    "AuditLog",
    "Broadcast",
    "BroadcastSegment",
    "BroadcastStatus",
    "Campaign",
    "CampaignStatus",
    "CampaignTarget",
    "Contact",
    "ContactSource",
    "ExcludeReason",
    "InboundMessage",
    "JobOutcome",
    "JobRun",
    "Keyword",
    "MessageStatus",
    "MissiveConversation",
    "MissiveConversationLabel",
    "MissiveLabel",
    "OutboundMessage",
    "Role",
    "ScheduleVersion",
    "Segment",
    "Setting",
    "StatusCallback",
    "Step",
    "UTCDateTime",
    "Upload",
    "UploadContact",
    "UploadPurpose",
    "UploadStatus",
    "User",
    "WebhookEvent",
    "utcnow",
]
