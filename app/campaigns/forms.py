"""Reading the campaign form: its plain fields into a `CampaignInput` for the services, and the
include/exclude builder's fields (`include-0-1-segment_id`) into the targeting dict and back.

The builder posts one hidden marker per group (`include-0`) and, per condition, its type and
parameters (`include-0-1-type`, `include-0-1-segment_id` or `-label_id` and `-since`). The
targeting dict built from them keeps the posted strings; `validate_targeting` checks them (so
an empty group or an unknown id is refused there, naming the group and condition).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.campaigns.services import CampaignInput
from app.models import Campaign, CampaignTarget
from app.validation import ValidationError

SIDES = ("include", "exclude")
CONDITION_FIELDS = ("type", "segment_id", "label_id", "since")
# Indexes of at most three digits: a crafted post cannot make the parser build huge lists.
_BUILDER_FIELD = re.compile(
    r"^(include|exclude)-(\d{1,3})(?:-(\d{1,3})-(type|segment_id|label_id|since))?$"
)
_PROBLEM_AT = re.compile(r"^(Include|Exclude) group (\d+)(?:, condition (\d+))?")
WHEN = ("later", "now")
DEFAULT_DELAY_MINUTES = "10"
MAX_DELAY_MINUTES = 7 * 24 * 60
TEXT_FIELDS = (
    "title",
    "target_kind",
    "message_source",
    "upload_id",
    "first_message",
    "second_message",
    "delay_minutes",
    "missive_label_name",
    "when",
    "run_date",
    "run_time",
)
# Where a service's ValidationError field shows on the form.
FORM_FIELD = {"delay_seconds": "delay_minutes"}


Targeting = dict[str, list[list[dict[str, str]]]]


def empty_draft() -> Targeting:
    return {"include": [], "exclude": []}


def parse_targeting(form: Mapping[str, str]) -> Targeting:
    """The builder's fields as a targeting dict (groups and conditions in their posted order)."""
    groups: dict[tuple[str, int], dict[int, dict[str, str]]] = {}
    for key in form:
        match = _BUILDER_FIELD.match(key)
        if not match:
            continue
        side, g, c, name = match.groups()
        conditions = groups.setdefault((side, int(g)), {})
        if c is not None:
            conditions.setdefault(int(c), {})[name] = (form.get(key) or "").strip()
    draft = empty_draft()
    for (side, _), conditions in sorted(groups.items()):
        draft[side].append([_condition(conditions[c]) for c in sorted(conditions)])
    return draft


def _condition(posted: dict[str, str]) -> dict[str, str]:
    kind = posted.get("type", "")
    if kind == "label":
        return {
            "type": "label",
            "label_id": posted.get("label_id", ""),
            "since": posted.get("since", ""),
        }
    if kind == "segment":
        return {"type": "segment", "segment_id": posted.get("segment_id", "")}
    return {"type": kind, **{k: v for k, v in posted.items() if k != "type"}}


def draft_from_targeting(targeting: dict[str, Any] | None) -> Targeting:
    """A saved (canonical) targeting as the builder shows it: every value a string."""
    draft = empty_draft()
    for side in SIDES:
        for group in (targeting or {}).get(side) or []:
            draft[side].append(
                [{k: "" if v is None else str(v) for k, v in c.items()} for c in group]
            )
    return draft


def _pick(value: str) -> dict[str, str] | None:
    """A builder picker's choice (`segment:3`, `label:7`) as a new condition."""
    kind, _, ident = (value or "").partition(":")
    if not ident.isdigit():
        return None
    if kind == "segment":
        return {"type": "segment", "segment_id": ident}
    if kind == "label":
        return {"type": "label", "label_id": ident, "since": ""}
    return None


def edit_targeting(draft: Targeting, action: str, at: str, pick: str = "") -> Targeting:
    """One builder edit: `add` a picked condition to group `include-0` or, at `include`, as a
    new group (so a new group is never empty); `remove` condition `include-0-1` (a group left
    with none goes too) or group `include-0`. Anything else leaves the draft as it is."""
    parts = at.split("-")
    side = parts[0]
    if side not in SIDES or not all(p.isdigit() for p in parts[1:]) or len(parts) > 3:
        return draft
    groups = draft[side]
    indexes = [int(p) for p in parts[1:]]
    if action == "add":
        condition = _pick(pick)
        if condition is None:
            return draft
        if not indexes:
            groups.append([condition])
        elif len(indexes) == 1 and indexes[0] < len(groups):
            groups[indexes[0]].append(condition)
    elif action == "remove":
        if len(indexes) == 1 and indexes[0] < len(groups):
            del groups[indexes[0]]
        elif len(indexes) == 2 and indexes[0] < len(groups):
            group = groups[indexes[0]]
            if indexes[1] < len(group):
                del group[indexes[1]]
            if not group:
                del groups[indexes[0]]
    return draft


def problem_at(message: str | None) -> str | None:
    """Which builder element a targeting error names ("Include group 2, condition 1" →
    `include-1-0`), so that control is marked invalid; None when it names none."""
    match = _PROBLEM_AT.match(message or "")
    if not match:
        return None
    side, group, condition = match.groups()
    at = f"{side.lower()}-{int(group) - 1}"
    return f"{at}-{int(condition) - 1}" if condition else at


def parse_delay(raw: str) -> int:
    """Minutes as typed → seconds for the service."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError("Give the delay before the follow-up, in minutes.", "delay_seconds")
    if not text.isdigit():
        raise ValidationError(
            "The delay is a whole number of minutes (0 for none).", "delay_seconds"
        )
    minutes = int(text)
    if minutes > MAX_DELAY_MINUTES:
        raise ValidationError(
            f"The delay can be at most {MAX_DELAY_MINUTES:,} minutes (7 days).", "delay_seconds"
        )
    return minutes * 60


def parse_run_at(day: str, at: str, zone: str) -> datetime | None:
    """A local date and time in the org zone → an aware time (None when both are empty); the
    service checks it is in the future and within 60 days."""
    day, at = (day or "").strip(), (at or "").strip()
    if not day and not at:
        return None
    try:
        local = datetime.fromisoformat(f"{day}T{at}")
    except ValueError:
        raise ValidationError(
            "Give both a date and a time (like 2026-12-01 and 09:30).", "run_at"
        ) from None
    if local.tzinfo is not None:
        raise ValidationError("Give the time without a time zone.", "run_at")
    return local.replace(tzinfo=ZoneInfo(zone))


@dataclass
class CampaignForm:
    """What the campaign form holds: its text fields (as posted or as saved) and the builder's
    draft targeting, for re-rendering and for the services."""

    values: dict[str, str] = field(default_factory=dict)
    targeting: Targeting = field(default_factory=empty_draft)

    @classmethod
    def blank(cls) -> CampaignForm:
        return cls(
            values={
                **{name: "" for name in TEXT_FIELDS},
                "target_kind": CampaignTarget.SEGMENTS.value,
                "message_source": "template",
                "delay_minutes": DEFAULT_DELAY_MINUTES,
                "when": "later",
            }
        )

    @classmethod
    def from_request(cls, form: Mapping[str, str]) -> CampaignForm:
        values = {name: (form.get(name) or "") for name in TEXT_FIELDS}
        values["when"] = values["when"] if values["when"] in WHEN else "later"
        if values["message_source"] not in ("template", "column"):
            values["message_source"] = "template"
        return cls(values=values, targeting=parse_targeting(form))

    @classmethod
    def from_campaign(cls, campaign: Campaign, zone: str) -> CampaignForm:
        run_date = run_time = ""
        if campaign.run_at is not None:
            local = campaign.run_at.astimezone(ZoneInfo(zone))
            run_date, run_time = local.strftime("%Y-%m-%d"), local.strftime("%H:%M")
        values = {
            "title": campaign.title or "",
            "target_kind": campaign.target_kind.value,
            "message_source": "column" if campaign.message_column else "template",
            "upload_id": str(campaign.upload_id or ""),
            "first_message": campaign.first_message or "",
            "second_message": campaign.second_message or "",
            "delay_minutes": str((campaign.delay_seconds or 0) // 60),
            "missive_label_name": campaign.missive_label_name or "",
            "when": "later",
            "run_date": run_date,
            "run_time": run_time,
        }
        return cls(values=values, targeting=draft_from_targeting(campaign.targeting))

    @property
    def kind(self) -> str:
        return self.values.get("target_kind", "")

    def _input(self, **extra: Any) -> CampaignInput:
        v = self.values
        return CampaignInput(
            title=v["title"],
            first_message=v["first_message"],
            second_message=v["second_message"],
            target_kind=v["target_kind"],
            targeting=self.targeting,
            upload_id=v["upload_id"] or None,
            message_source=v["message_source"],
            missive_label_name=v["missive_label_name"],
            **extra,
        )

    def target_input(self) -> CampaignInput:
        """The submission for the live estimate (only its target is checked): never raises."""
        return self._input()

    def to_input(self, zone: str, *, draft: bool = False) -> CampaignInput:
        """The whole submission; ValidationError for a delay or run time that does not parse.
        A draft saved with "Send now" keeps no time: it is sent when someone schedules it."""
        send_now = self.values["when"] == "now"
        if draft and send_now:
            send_now = False
            self.values.update(when="later", run_date="", run_time="")
        delay = self.values["delay_minutes"]
        no_follow_up = not self.values["second_message"].strip()
        return self._input(
            # Without a follow-up the delay means nothing: a cleared box is not an error then.
            delay_seconds=int(DEFAULT_DELAY_MINUTES) * 60
            if no_follow_up and not delay.strip()
            else parse_delay(delay),
            run_at=None
            if send_now
            else parse_run_at(self.values["run_date"], self.values["run_time"], zone),
            send_now=send_now,
        )


def check_nul(form: Mapping[str, str]) -> None:
    """PostgreSQL text cannot hold NUL: a posted value with one is refused, naming its field."""
    for key, value in form.items():
        if "\x00" not in (value or ""):
            continue
        if key in ("run_date", "run_time"):
            key = "run_at"
        elif _BUILDER_FIELD.match(key):
            key = "targeting"
        elif key not in TEXT_FIELDS:
            key = "form"
        raise ValidationError("This contains a NUL character: remove it.", key)


def form_field(field_name: str | None) -> str:
    """The form's name for a service's field ("delay_seconds" → "delay_minutes")."""
    return FORM_FIELD.get(field_name or "", field_name or "form")
