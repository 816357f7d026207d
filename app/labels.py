"""What people read for a stored name: statuses (by the kind of thing they describe) and audit
actions. Pages show these words; exports, the API, links and filter values keep the stored names."""

from __future__ import annotations

import enum
import re

# Outbound message states (SPEC 6.2). A stored name that reads well as it is maps to itself,
# so this lists every state and a reader sees them all in one place.
_MESSAGE = {
    "scheduled": "scheduled",  # waiting for its time: a follow-up, or held by quiet hours
    "queued": "queued",
    "sending": "sending",  # claimed by a worker
    "sent": "sent",  # the provider accepted it
    "delivered": "delivered",
    "undelivered": "not delivered",
    "failed": "failed",
    "retrying": "retrying",
    "unknown": "outcome unknown",  # the provider may or may not have it (SPEC 6.4)
    "cancelled": "cancelled",
    "skipped": "skipped",
}

# (kind of thing, stored value) -> words, one table per kind.
STATUS_LABELS: dict[str, dict[str, str]] = {
    "message": _MESSAGE,
    # The "Needs attention" list: a message there left `sending` long ago, so its worker never
    # reported what the provider said.
    "attention": {**_MESSAGE, "sending": "no report"},
    "broadcast": {
        "upcoming": "upcoming",
        "sending": "sending",
        "sent": "sent",
        "cancelled": "cancelled",
    },
    "campaign": {
        "draft": "draft",
        "scheduled": "scheduled",
        "sending": "sending",
        "sent": "sent",
        "cancelled": "cancelled",
    },
    "upload": {
        "pending": "waiting",
        "validating": "checking",
        "validated": "ready to import",
        "importing": "importing",
        "done": "imported",
        "failed": "failed",
    },
    # What an upload is for (Upload.purpose): not a status, but a stored name shown the same way.
    "upload purpose": {
        "contact_import": "contact import",
        "campaign_list": "campaign list",
        "personalized": "personalized messages",
    },
    # A job run's outcome (JobRun.outcome), and an RQ job waiting or taken by a worker.
    "job": {
        "running": "running",
        "success": "succeeded",
        "failed": "failed",
        "skipped": "skipped",
        "queued": "queued",
    },
    # An RQ worker's state.
    "worker": {
        "idle": "idle",
        "busy": "busy",
        "started": "starting",
        "suspended": "suspended",
    },
    # What an inbound message was, on a contact's timeline: a keyword or a reply.
    "inbound": {
        "stop": "STOP",
        "start": "START",
        "help": "HELP",
        "reply": "reply",
    },
}


def stored_value(value: object) -> str:
    """The stored name of a status: an enum's value (`WorkerStatus.IDLE` -> `idle`), else str()."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "" if value is None else str(value)


def tidy(name: str) -> str:
    """A stored name no table lists, made readable: `rate_limited` -> `rate limited`."""
    return re.sub(r"[_\s]+", " ", name).strip()


def status_label(value: object, kind: str) -> str:
    """The words for a stored status of a kind of thing: `status_label("unknown", "message")` ->
    `outcome unknown`. A value (or kind) not listed reads as its tidied stored name."""
    stored = stored_value(value)
    return STATUS_LABELS.get(kind, {}).get(stored) or tidy(stored)


# Every action recorded in the audit log (the first argument of record_audit anywhere in app/;
# tests/test_labels.py checks the source for any not listed here).
AUDIT_ACTION_LABELS: dict[str, str] = {
    # Signing in and people
    "login": "Signed in",
    "login_failed": "Sign-in failed",
    "logout": "Signed out",
    "user_create": "User added",
    "user_update": "User changed",
    "api_token.create": "API token created",
    "api_token.revoke": "API token revoked",
    # Broadcasts and the weekly schedule
    "schedule.update": "Weekly schedule changed",
    "broadcast.update": "Broadcast changed",
    "broadcast.start": "Broadcast started",
    "broadcast.skipped": "Broadcast run skipped",
    "broadcast.cancel": "Broadcast cancelled",
    # Campaigns
    "campaign.create": "Campaign created",
    "campaign.update": "Campaign changed",
    "campaign.delete": "Campaign deleted",
    "campaign.unschedule": "Campaign unscheduled",
    "campaign.start": "Campaign started",
    "campaign.failed_start": "Campaign could not start",
    "campaign.skipped": "Campaign run skipped",
    "campaign.cancel": "Campaign cancelled",
    # Segments
    "segment_create": "Segment created",
    "segment_update": "Segment changed",
    "segment_delete": "Segment deleted",
    # Contacts
    "contact_update": "Contact changed",
    "contact_unsubscribe": "Contact unsubscribed",
    "contact_resubscribe": "Contact subscribed again",
    "contact_exclude": "Contact excluded",
    "contact_include": "Contact included again",
    "contact.unsubscribed": "Contact unsubscribed by the sending engine",
    "contact.excluded": "Contact excluded by the sending engine",
    "inbound.possible_opt_out": "Possible opt-out decided",
    # Uploads
    "upload_create": "File uploaded",
    "import": "Upload imported",
    # Sending and the System page
    "message.resolved": "Message resolved by hand",
    "periodic_job.run_now": "Job run started by hand",
    # Settings
    "settings.quiet_hours": "Quiet hours changed",
    "settings.keywords": "Keywords changed",
    "settings.help_reply": "HELP reply changed",
    "settings.opt_out_reply": "Opt-out reply changed",
    "settings.staff_numbers": "Staff numbers changed",
    # Command line
    "seed_demo": "Demo data added",
}


def audit_action_label(action: str) -> str:
    """What an audit action reads as: its label, or for one not listed its name tidied
    (`thing.do_more` -> `Thing do more`)."""
    if action in AUDIT_ACTION_LABELS:
        return AUDIT_ACTION_LABELS[action]
    words = re.sub(r"[._\s]+", " ", action).strip()
    return words[:1].upper() + words[1:]
