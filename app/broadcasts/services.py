"""Broadcasts (SPEC 4): the schedule, the upcoming broadcast and its edits (one registry of
fields), the send-now and test-send checks, starting one, and the queries its pages show.

Services take plain values: settings come in as arguments from the boundary (`zone`,
`batch_max`, `catch_up_minutes`), never from `current_app`. They add and flush; the route, job
or command commits (start_broadcast and run_due_broadcast commit themselves: a start is one
transaction that must land before sending is enqueued)."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.audit.services import record_audit
from app.broadcasts.cadence import WEEKDAYS, decide, next_slot, send_now_refusal
from app.broadcasts.display import local_parts
from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastSegment,
    BroadcastStatus,
    ScheduleVersion,
    Segment,
    User,
    utcnow,
)
from app.segments.services import Audience, resolve_segment_contact_ids
from app.sending.outbound import insert_first_messages
from app.sending.quiet import quiet_warning, slot_refusal
from app.sends.stats import initial_stats, store_stats
from app.validation import ValidationError

log = logging.getLogger(__name__)
MAX_MESSAGE_LENGTH = 1600  # Twilio's limit for one message body
MAX_DELAY_SECONDS = 7 * 24 * 3600


# -- the schedule ------------------------------------------------------------------------------
def active_schedule() -> ScheduleVersion | None:
    """The newest schedule version is the one in force."""
    return db.session.scalar(
        sa.select(ScheduleVersion).order_by(ScheduleVersion.id.desc()).limit(1)
    )


def schedule_versions(limit: int) -> list[ScheduleVersion]:
    """The newest saved versions of the weekly schedule, with who saved them."""
    return list(
        db.session.scalars(
            sa.select(ScheduleVersion)
            .options(selectinload(ScheduleVersion.created_by))
            .order_by(ScheduleVersion.id.desc())
            .limit(limit)
        )
    )


def schedule_values(schedule: ScheduleVersion | None) -> dict[str, str]:
    """The schedule editor's form values: HH:MM or "" per weekday, and the default batch."""
    values = {"default_batch_size": str(schedule.default_batch_size if schedule else 1000)}
    for day, at in (schedule.times() if schedule else dict.fromkeys(WEEKDAYS)).items():
        values[day] = at.strftime("%H:%M") if at else ""
    return values


def schedule_times() -> dict[str, time | None]:
    schedule = active_schedule()
    return schedule.times() if schedule else {day: None for day in WEEKDAYS}


def save_schedule(
    times: dict[str, time | None],
    default_batch_size: int,
    *,
    user: User | None,
    batch_max: int,
    zone: str,
    window: tuple[time, time] | None = None,
) -> ScheduleVersion:
    """A new schedule version (the old ones stay as history); re-plans the upcoming broadcast.

    Times must fall on 15-minute steps and, when quiet hours are on (`window`), inside the
    sending window; the caller commits.
    """
    for day, at in times.items():
        if day not in WEEKDAYS:
            raise ValidationError(f"Unknown weekday {day!r}.", day)
        if at is not None and (at.minute % 15 or at.second or at.microsecond):
            raise ValidationError("Times go in 15-minute steps (09:00, 09:15, …).", day)
        refusal = slot_refusal(day, at, window) if at is not None else None
        if refusal:
            raise ValidationError(refusal, day)
    check_batch_size(default_batch_size, batch_max, "default_batch_size")
    version = ScheduleVersion(
        default_batch_size=default_batch_size,
        created_by=user,
        **{d: times.get(d) for d in WEEKDAYS},
    )
    db.session.add(version)
    db.session.flush()
    upcoming = upcoming_broadcast()
    if upcoming is not None:
        plan_upcoming(upcoming, after=utcnow(), zone=zone)
    record_audit(
        "schedule.update",
        user=user,
        object_type="schedule",
        object_id=version.id,
        summary="Weekly schedule: "
        + ", ".join(f"{d[:3]} {t:%H:%M}" for d, t in times.items() if t is not None)
        + f"; default batch {default_batch_size}",
    )
    return version


# -- the upcoming broadcast --------------------------------------------------------------------
def upcoming_broadcast() -> Broadcast | None:
    return db.session.scalar(
        sa.select(Broadcast)
        .where(Broadcast.status == BroadcastStatus.UPCOMING)
        .options(selectinload(Broadcast.segment_links).selectinload(BroadcastSegment.segment))
    )


def last_started() -> Broadcast | None:
    return db.session.scalar(
        sa.select(Broadcast)
        .where(Broadcast.started_at.is_not(None))
        .order_by(Broadcast.started_at.desc())
        .limit(1)
    )


def _new_upcoming(zone: str, now: datetime) -> Broadcast:
    schedule = active_schedule()
    upcoming = Broadcast(
        first_message="",
        delay_seconds=600,
        batch_size=schedule.default_batch_size if schedule else 1000,
        status=BroadcastStatus.UPCOMING,
        segment_links=[],
    )
    plan_upcoming(upcoming, after=now, zone=zone)
    return upcoming


def ensure_upcoming(zone: str, now: datetime | None = None) -> Broadcast:
    """The upcoming broadcast, created (empty texts) when there is none yet; the caller commits
    (and retries on IntegrityError: another request created it at the same moment)."""
    upcoming = upcoming_broadcast()
    if upcoming is None:
        upcoming = _new_upcoming(zone, now or utcnow())
        db.session.add(upcoming)
        db.session.flush()
    return upcoming


def saved_upcoming(zone: str) -> Broadcast:
    """The upcoming broadcast for a change: created empty and committed when there is none yet
    (if another request created it at the same moment, that one)."""
    upcoming = upcoming_broadcast()
    if upcoming is not None:
        return upcoming
    try:
        upcoming = ensure_upcoming(zone)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        upcoming = upcoming_broadcast()
        if upcoming is None:
            raise
    return upcoming


def upcoming_or_draft(zone: str, now: datetime | None = None) -> Broadcast:
    """What a page shows as the upcoming broadcast: the saved one, or an unsaved empty draft
    planned from the schedule (a GET never writes; the first edit creates it)."""
    return upcoming_broadcast() or _new_upcoming(zone, now or utcnow())


def plan_upcoming(broadcast: Broadcast, *, after: datetime, zone: str) -> None:
    """Store the next weekly run time on the upcoming broadcast (what the pages show)."""
    broadcast.scheduled_for = next_slot(schedule_times(), after, ZoneInfo(zone))


def run_time(broadcast: Broadcast) -> datetime | None:
    """When the upcoming broadcast runs: its one-off time, else its weekly slot."""
    return broadcast.run_at_override or broadcast.scheduled_for


def check_batch_size(value: int, batch_max: int, field: str = "batch_size") -> None:
    if not 1 <= value <= batch_max:
        raise ValidationError(f"The batch size must be between 1 and {batch_max:,}.", field)


def _check_message(text: str, field: str, *, required: bool) -> str:
    text = text.replace("\r\n", "\n").strip()
    if required and not text:
        raise ValidationError("The first message cannot be empty.", field)
    if len(text) > MAX_MESSAGE_LENGTH:
        raise ValidationError(
            f"A message can be at most {MAX_MESSAGE_LENGTH:,} characters ({len(text):,} now).",
            field,
        )
    return text


# -- the upcoming broadcast's editable fields: one registry -------------------------------------
@dataclass(frozen=True)
class FieldContext:
    """What saving a field may need besides the form: plain settings from the boundary."""

    batch_max: int
    zone: str
    now: datetime


@dataclass(frozen=True)
class UpcomingField:
    """One inline-edited field of the upcoming broadcast: the form keys it posts, the partial
    that renders it, its current form values, and how it is saved (returning a summary)."""

    name: str
    inputs: tuple[str, ...]
    template: str
    current: Callable[[Broadcast, str], dict[str, str]]
    save: Callable[[Broadcast, dict[str, str], FieldContext], str]

    def posted(self, raw: dict[str, str]) -> dict[str, str]:
        """The submitted values to show again with an error (what the person typed)."""
        return {key: raw.get(key, "") for key in self.inputs}


def _save_first(broadcast: Broadcast, raw: dict[str, str], ctx: FieldContext) -> str:
    broadcast.first_message = _check_message(
        raw.get("first_message", ""), "first_message", required=True
    )
    return "first message"


def _save_second(broadcast: Broadcast, raw: dict[str, str], ctx: FieldContext) -> str:
    text = _check_message(raw.get("second_message", ""), "second_message", required=False)
    broadcast.second_message = text or None
    return "follow-up message" if text else "follow-up removed"


def _save_delay(broadcast: Broadcast, raw: dict[str, str], ctx: FieldContext) -> str:
    minutes = _whole_number(raw.get("delay_minutes", ""), "delay_minutes", "The delay")
    if not 0 <= minutes * 60 <= MAX_DELAY_SECONDS:
        raise ValidationError("The delay must be between 0 minutes and 7 days.", "delay_minutes")
    broadcast.delay_seconds = minutes * 60
    return f"delay {minutes} min"


def _save_batch_size(broadcast: Broadcast, raw: dict[str, str], ctx: FieldContext) -> str:
    size = _whole_number(raw.get("batch_size", ""), "batch_size", "The batch size")
    check_batch_size(size, ctx.batch_max)
    broadcast.batch_size = size
    return f"batch size {size:,}"


def _save_run_at(broadcast: Broadcast, raw: dict[str, str], ctx: FieldContext) -> str:
    if raw.get("clear"):
        raw = {**raw, "run_date": "", "run_time": ""}
    broadcast.run_at_override = _parse_run_at(raw, ctx.zone, ctx.now)
    if broadcast.run_at_override is None:
        return "one-off run time cleared"
    return f"one-off run time {broadcast.run_at_override:%Y-%m-%d %H:%M} UTC"


def _current_run_at(broadcast: Broadcast, zone: str) -> dict[str, str]:
    run_date, run_time_value = local_parts(broadcast.run_at_override, zone)
    return {"run_date": run_date, "run_time": run_time_value}


def _current_ratios(broadcast: Broadcast, zone: str) -> dict[str, str]:
    values = {"filler": ""}
    for link in broadcast.segment_links:
        values[f"ratio_{link.segment_id}"] = str(link.ratio)
        if link.is_filler:
            values["filler"] = str(link.segment_id)
    return values


class _SegmentsField(UpcomingField):
    def posted(self, raw: dict[str, str]) -> dict[str, str]:
        # A share left out of the post is blank, not its saved value.
        blanks = {f"ratio_{segment.id}": "" for segment in segment_choices()}
        ratios = {k: v for k, v in raw.items() if k.startswith("ratio_")}
        return {**blanks, **ratios, "filler": raw.get("filler", "")}


_PARTIALS = "broadcasts/partials"
UPCOMING_FIELDS: dict[str, UpcomingField] = {
    field.name: field
    for field in (
        UpcomingField(
            "first_message",
            ("first_message",),
            f"{_PARTIALS}/_field_message.html",
            lambda b, zone: {"first_message": b.first_message or ""},
            _save_first,
        ),
        UpcomingField(
            "second_message",
            ("second_message",),
            f"{_PARTIALS}/_field_message.html",
            lambda b, zone: {"second_message": b.second_message or ""},
            _save_second,
        ),
        UpcomingField(
            "delay",
            ("delay_minutes",),
            f"{_PARTIALS}/_field_number.html",
            lambda b, zone: {"delay_minutes": str(b.delay_seconds // 60)},
            _save_delay,
        ),
        UpcomingField(
            "batch_size",
            ("batch_size",),
            f"{_PARTIALS}/_field_number.html",
            lambda b, zone: {"batch_size": str(b.batch_size)},
            _save_batch_size,
        ),
        UpcomingField(
            "run_at",
            ("run_date", "run_time"),
            f"{_PARTIALS}/_field_run_at.html",
            _current_run_at,
            _save_run_at,
        ),
        _SegmentsField(
            "segments",
            ("filler",),  # and ratio_<segment id>
            f"{_PARTIALS}/_segments_feedback.html",
            _current_ratios,
            lambda b, raw, ctx: _update_ratios(b, raw),
        ),
    )
}


def current_values(broadcast: Broadcast, zone: str) -> dict[str, str]:
    """Every field's form values for the upcoming broadcast as saved."""
    values: dict[str, str] = {}
    for field in UPCOMING_FIELDS.values():
        values.update(field.current(broadcast, zone))
    return values


def segment_choices() -> list[Segment]:
    """The segments a broadcast can take shares of, by name."""
    return list(db.session.scalars(sa.select(Segment).order_by(Segment.name)))


def ratio_sum(values: dict[str, str]) -> int | None:
    """The total of the shares being edited; None while one of them is not a whole number."""
    total = 0
    for key, value in values.items():
        if key.startswith("ratio_"):
            value = (value or "").strip() or "0"
            if not value.isdigit():
                return None
            total += int(value)
    return total


def update_upcoming(
    broadcast: Broadcast,
    field: str,
    raw: dict[str, str],
    *,
    user: User,
    batch_max: int,
    zone: str,
    now: datetime | None = None,
) -> str:
    """Save one field of the upcoming broadcast (see UPCOMING_FIELDS) from form values; returns
    a short summary. Raises ValidationError with the field at fault; audited, the caller
    commits."""
    if broadcast.status != BroadcastStatus.UPCOMING:
        raise ValidationError("This broadcast has started: it can no longer be edited.")
    spec = UPCOMING_FIELDS.get(field)
    if spec is None:
        raise ValidationError(f"Unknown field {field!r}.")
    summary = spec.save(broadcast, raw, FieldContext(batch_max, zone, now or utcnow()))
    record_audit(
        "broadcast.update",
        user=user,
        obj=broadcast,
        object_type="broadcast",
        object_id=broadcast.id,
        summary=f"Upcoming broadcast: {summary}",
    )
    return summary


def _whole_number(value: str, field: str, label: str) -> int:
    try:
        return int(value.strip())
    except (ValueError, AttributeError):
        raise ValidationError(f"{label} must be a whole number.", field) from None


def _parse_run_at(raw: dict[str, str], zone: str, now: datetime) -> datetime | None:
    day, at = (raw.get("run_date") or "").strip(), (raw.get("run_time") or "").strip()
    if not day and not at:
        return None
    try:
        local = datetime.fromisoformat(f"{day}T{at}")
    except ValueError:
        raise ValidationError(
            "Give both a date and a time (like 2026-12-01 and 09:30).", "run_at"
        ) from None
    if local.minute % 15:
        raise ValidationError("Run times go in 15-minute steps.", "run_at")
    when = local.replace(tzinfo=ZoneInfo(zone)).astimezone(now.tzinfo)
    if when <= now:
        raise ValidationError("That time has passed: choose a time in the future.", "run_at")
    if when > now + timedelta(days=60):
        raise ValidationError("Choose a time within the next 60 days.", "run_at")
    return when


def _update_ratios(broadcast: Broadcast, raw: dict[str, str]) -> str:
    """`ratio_<segment id>` percentages (0–100, summing to at most 100) and `filler`."""
    segments = {s.id: s for s in db.session.scalars(sa.select(Segment))}
    ratios: dict[int, int] = {}
    for key, value in raw.items():
        if not key.startswith("ratio_"):
            continue
        try:
            segment_id = int(key.removeprefix("ratio_"))
        except ValueError:
            continue
        if segment_id not in segments:
            raise ValidationError("One of those segments no longer exists; reload the page.")
        value = (value or "").strip() or "0"
        try:
            ratio = int(value)
        except ValueError:
            raise ValidationError(
                f"{segments[segment_id].name}: give a whole percentage.", key
            ) from None
        if not 0 <= ratio <= 100:
            raise ValidationError(f"{segments[segment_id].name}: between 0 and 100 %.", key)
        ratios[segment_id] = ratio
    total = sum(ratios.values())
    if total > 100:
        raise ValidationError(f"The ratios add up to {total} %: at most 100 % in all.", "segments")
    filler_raw = (raw.get("filler") or "").strip()
    filler = int(filler_raw) if filler_raw.isdigit() else None
    if filler is not None and filler not in segments:
        raise ValidationError("The filler segment no longer exists; reload the page.", "filler")
    links = {link.segment_id: link for link in broadcast.segment_links}
    wanted = {sid for sid, ratio in ratios.items() if ratio > 0} | ({filler} if filler else set())
    for segment_id in list(links):
        if segment_id not in wanted:
            broadcast.segment_links.remove(links.pop(segment_id))
    db.session.flush()  # the filler's partial unique index must see old rows gone first
    position = 0
    for segment_id in sorted(wanted, key=lambda s: (links[s].position if s in links else 999, s)):
        link = links.get(segment_id) or BroadcastSegment(segment_id=segment_id)
        if segment_id not in links:
            broadcast.segment_links.append(link)
        link.ratio = ratios.get(segment_id, 0)
        link.is_filler = False
        link.position = position
        position += 1
    db.session.flush()
    if filler:
        next(link for link in broadcast.segment_links if link.segment_id == filler).is_filler = True
    parts = [
        f"{segments[link.segment_id].name} {link.ratio} %"
        for link in broadcast.segment_links
        if link.ratio
    ]
    if filler:
        parts.append(f"filler {segments[filler].name}")
    return "segments " + (", ".join(parts) or "none")


# -- starting a broadcast ----------------------------------------------------------------------
@dataclass
class Recipients:
    contact_ids: list[int]
    segment_ids: list[int | None]

    def __len__(self) -> int:
        return len(self.contact_ids)


def choose_recipients(
    broadcast: Broadcast, *, rng: random.Random | None = None, now: datetime | None = None
) -> Recipients:
    """SPEC 4.2: each segment in order gets floor(ratio % × N) random eligible contacts not
    already chosen (deduplicated before its limit), then the filler tops the batch up to N."""
    rng = rng or random.Random()
    size = broadcast.batch_size
    chosen: dict[int, int] = {}
    resolved: dict[int, list[int]] = {}

    def eligible(link: BroadcastSegment) -> list[int]:
        if link.segment_id not in resolved:
            resolved[link.segment_id] = resolve_segment_contact_ids(
                link.segment, purpose=Audience.BROADCAST, now=now
            )
        return resolved[link.segment_id]

    def take(link: BroadcastSegment, count: int) -> None:
        if count <= 0:
            return
        candidates = [cid for cid in eligible(link) if cid not in chosen]
        for cid in rng.sample(candidates, min(count, len(candidates))):
            chosen[cid] = link.segment_id

    links = sorted(broadcast.segment_links, key=lambda link: (link.position, link.id or 0))
    for link in links:
        take(link, math.floor(link.ratio * size / 100))
    filler = next((link for link in links if link.is_filler), None)
    if filler is not None:
        take(filler, size - len(chosen))
    # In id order: the rows' index entries then go in order too (a quarter faster to insert
    # than in random order, measured), and the choice itself stays random.
    ids = sorted(chosen)
    return Recipients(ids, [chosen[cid] for cid in ids])


def start_broadcast(
    broadcast_id: int,
    *,
    now: datetime | None = None,
    user: User | None = None,
    keep_override: bool = False,
    zone: str,
    rng: random.Random | None = None,
) -> Broadcast | None:
    """Start the upcoming broadcast: freeze it, create its outbound rows and the next upcoming
    broadcast, all in one transaction; commits. Returns None when it is no longer upcoming
    (another process started it first): a broadcast never starts twice.

    The caller enqueues sending after this returns.
    """
    now = now or utcnow()
    claimed = db.session.execute(
        sa.update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.UPCOMING)
        .values(
            status=BroadcastStatus.SENDING, started_at=now, started_by_id=user.id if user else None
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return None
    broadcast = db.session.get(Broadcast, broadcast_id, populate_existing=True)
    try:
        recipients = choose_recipients(broadcast, rng=rng, now=now)
    except ValidationError as exc:
        db.session.rollback()
        raise ValidationError(f"A segment of this broadcast does not work: {exc.message}") from exc
    created = insert_first_messages(
        broadcast, recipients.contact_ids, recipients.segment_ids, broadcast.first_message, now=now
    )
    broadcast.recipient_count = created
    broadcast.original_first_message = broadcast.first_message
    broadcast.original_second_message = broadcast.second_message
    pending_override = broadcast.run_at_override if keep_override else None
    if pending_override is not None and pending_override <= now:
        pending_override = None
    following = clone_as_upcoming(broadcast, run_at_override=pending_override)
    db.session.add(following)
    plan_upcoming(following, after=now, zone=zone)
    # Nothing has been sent yet: the first figures are known without counting the new rows.
    store_stats(broadcast, initial_stats(created), now)
    if created == 0:
        broadcast.status = BroadcastStatus.SENT
        broadcast.finished_at = now
    record_audit(
        "broadcast.start",
        user=user,
        actor=None if user else "schedule",
        object_type="broadcast",
        object_id=broadcast.id,
        summary=f"Broadcast {broadcast.id} started with {created:,} recipients",
    )
    db.session.commit()
    return broadcast


def clone_as_upcoming(broadcast: Broadcast, *, run_at_override: datetime | None) -> Broadcast:
    """The next upcoming broadcast: same texts, delay, batch size and segment ratios."""
    return Broadcast(
        first_message=broadcast.first_message,
        second_message=broadcast.second_message,
        delay_seconds=broadcast.delay_seconds,
        batch_size=broadcast.batch_size,
        run_at_override=run_at_override,
        status=BroadcastStatus.UPCOMING,
        segment_links=[
            BroadcastSegment(
                segment_id=link.segment_id,
                ratio=link.ratio,
                is_filler=link.is_filler,
                position=link.position,
            )
            for link in broadcast.segment_links
        ],
    )


def send_now_check(upcoming: Broadcast | None, now: datetime | None = None) -> str | None:
    """Why the upcoming broadcast cannot be sent now (SPEC 4.1 guards), or None: the one check
    the confirmation, the send itself and any other caller use."""
    if upcoming is None or upcoming.id is None:
        return "There is no upcoming broadcast to send: write its first message first."
    if not upcoming.first_message.strip():
        return "Write the first message before sending."
    previous = last_started()
    return send_now_refusal(
        now=now or utcnow(),
        run_at_override=upcoming.run_at_override,
        last_started_at=previous.started_at if previous else None,
    )


@dataclass(frozen=True)
class SendNowPreview:
    refusal: str | None
    estimate: int | None  # recipients it would reach now, when it may go
    warning: str | None = None  # quiet hours: when the texts will really go out


def send_now_preview(
    upcoming: Broadcast,
    now: datetime | None = None,
    *,
    zone: str,
    window: tuple[time, time] | None = None,
) -> SendNowPreview:
    """What the send-now confirmation says: why not, or how many people it reaches now, and
    whether quiet hours will hold the texts."""
    now = now or utcnow()
    refusal = send_now_check(upcoming, now)
    if refusal:
        return SendNowPreview(refusal, None)
    warning = quiet_warning(now, zone, window)
    try:
        return SendNowPreview(None, recipient_estimate(upcoming), warning)
    except ValidationError as exc:
        return SendNowPreview(f"A segment of this broadcast does not work: {exc.message}", None)


def send_now(*, user: User, zone: str, now: datetime | None = None) -> Broadcast:
    """Start the upcoming broadcast at once; ValidationError says why not (send_now_check).
    Commits (start_broadcast); the caller enqueues sending."""
    now = now or utcnow()
    upcoming = upcoming_broadcast()
    refusal = send_now_check(upcoming, now)
    if refusal:
        field = "first_message" if upcoming is not None and upcoming.id else None
        raise ValidationError(refusal, field if "first message" in refusal else None)
    started = start_broadcast(upcoming.id, now=now, user=user, keep_override=True, zone=zone)
    if started is None:
        raise ValidationError("This broadcast has just been started by someone else.")
    return started


def test_send_check(broadcast: Broadcast | None, numbers: list[str]) -> str | None:
    """Why the current texts cannot be test-sent, or None: used by the route and the job."""
    if broadcast is None or not broadcast.first_message.strip():
        return "Write the first message before a test send."
    if not numbers:
        return "There are no staff test numbers yet: an admin adds them on the Settings page."
    return None


test_send_check.__test__ = False  # a check, not a test, though its name starts with test_


def recipient_estimate(broadcast: Broadcast) -> int:
    """How many recipients starting now would pick (the same code path, without inserting)."""
    return len(choose_recipients(broadcast, rng=random.Random(0)))


# -- the tick ----------------------------------------------------------------------------------
def run_due_broadcast(
    *, zone: str, catch_up_minutes: int, now: datetime | None = None
) -> dict[str, Any]:
    """Start the upcoming broadcast when its run time is due; skip a run missed beyond the
    catch-up window (recorded in the returned counts, which the tick stores in its job run).
    Commits."""
    now = now or utcnow()
    upcoming = upcoming_broadcast()
    if upcoming is None:
        return {"broadcast": "none upcoming"}
    if upcoming.scheduled_for is None and schedule_times() != dict.fromkeys(WEEKDAYS):
        # Created before any schedule (or by an import): plan it from now on.
        plan_upcoming(upcoming, after=now, zone=zone)
        db.session.commit()
    previous = last_started()
    decision = decide(
        run_at=run_time(upcoming),
        now=now,
        last_started_at=previous.started_at if previous else None,
        catch_up=timedelta(minutes=catch_up_minutes),
    )
    if decision.action == "skip":
        missed = decision.run_at
        upcoming.run_at_override = None
        plan_upcoming(upcoming, after=now, zone=zone)
        record_audit(
            "broadcast.skipped",
            actor="schedule",
            object_type="broadcast",
            object_id=upcoming.id,
            summary=f"Run at {missed:%Y-%m-%d %H:%M} UTC skipped: {decision.reason}",
        )
        db.session.commit()
        return {"broadcast_skipped": f"{missed.isoformat()} ({decision.reason})"}
    if decision.action != "start":
        return {"broadcast": decision.action}
    if not upcoming.first_message.strip():
        upcoming.run_at_override = None
        plan_upcoming(upcoming, after=now, zone=zone)
        db.session.commit()
        return {"broadcast_skipped": "the first message is empty"}
    started = start_broadcast(upcoming.id, now=now, zone=zone)
    if started is None:
        return {"broadcast": "started elsewhere"}
    return {"broadcast_started": started.id, "recipients": started.recipient_count}


def history_query() -> sa.Select[tuple[Broadcast]]:
    return (
        sa.select(Broadcast)
        .where(Broadcast.status.in_((BroadcastStatus.SENDING, BroadcastStatus.SENT)))
        .order_by(Broadcast.started_at.desc(), Broadcast.id.desc())
    )


def latest_broadcast() -> Broadcast | None:
    """The broadcast sending now, or the last one sent."""
    return db.session.scalar(history_query().limit(1))


def history_page(page: int, size: int) -> tuple[list[Broadcast], int | None]:
    """One page of started broadcasts, newest first, and the next page's number (or None)."""
    rows = db.session.scalars(history_query().offset((page - 1) * size).limit(size + 1)).all()
    return list(rows[:size]), page + 1 if len(rows) > size else None


def sending_broadcasts() -> list[Broadcast]:
    return list(
        db.session.scalars(
            sa.select(Broadcast)
            .where(Broadcast.status == BroadcastStatus.SENDING)
            .order_by(Broadcast.started_at.desc())
        )
    )


def trend_broadcasts(count: int) -> list[Broadcast]:
    """The last `count` started broadcasts, oldest first (the trend chart's order)."""
    return list(reversed(db.session.scalars(history_query().limit(count)).all()))
