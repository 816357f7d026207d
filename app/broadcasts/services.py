"""Broadcasts (SPEC 4): the schedule, the upcoming broadcast and its edits, and starting one."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import selectinload

from app.audit.services import record_audit
from app.broadcasts.cadence import WEEKDAYS, decide, next_slot, send_now_refusal
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


def schedule_times() -> dict[str, time | None]:
    schedule = active_schedule()
    return schedule.times() if schedule else {day: None for day in WEEKDAYS}


def save_schedule(
    times: dict[str, time | None], default_batch_size: int, *, user: User | None, batch_max: int
) -> ScheduleVersion:
    """A new schedule version (the old ones stay as history); re-plans the upcoming broadcast.

    Times must fall on 15-minute steps; the caller commits.
    """
    for day, at in times.items():
        if day not in WEEKDAYS:
            raise ValidationError(f"Unknown weekday {day!r}.", day)
        if at is not None and (at.minute % 15 or at.second or at.microsecond):
            raise ValidationError("Times go in 15-minute steps (09:00, 09:15, …).", day)
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
        plan_upcoming(upcoming, after=utcnow())
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


def ensure_upcoming(app: Flask) -> Broadcast:
    """The upcoming broadcast, created (empty texts) when there is none yet; the caller commits."""
    upcoming = upcoming_broadcast()
    if upcoming is None:
        schedule = active_schedule()
        upcoming = Broadcast(
            first_message="",
            batch_size=schedule.default_batch_size if schedule else 1000,
            status=BroadcastStatus.UPCOMING,
        )
        db.session.add(upcoming)
        plan_upcoming(upcoming, after=utcnow(), zone=app.config["APP_TIMEZONE"])
        db.session.flush()
    return upcoming


def plan_upcoming(broadcast: Broadcast, *, after: datetime, zone: str | None = None) -> None:
    """Store the next weekly run time on the upcoming broadcast (what the pages show)."""
    from flask import current_app

    tz = ZoneInfo(zone or current_app.config["APP_TIMEZONE"])
    broadcast.scheduled_for = next_slot(schedule_times(), after, tz)


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
    """Save one field of the upcoming broadcast from form values; returns a short summary.

    Fields: first_message, second_message, delay (minutes), batch_size, run_at (local date and
    time, or empty to clear), segments (ratio_<segment id>, filler). Raises ValidationError with
    the field at fault; the caller commits.
    """
    if broadcast.status != BroadcastStatus.UPCOMING:
        raise ValidationError("This broadcast has started: it can no longer be edited.")
    now = now or utcnow()
    if field == "first_message":
        broadcast.first_message = _check_message(raw.get("first_message", ""), field, required=True)
        summary = "first message"
    elif field == "second_message":
        text = _check_message(raw.get("second_message", ""), field, required=False)
        broadcast.second_message = text or None
        summary = "follow-up message" if text else "follow-up removed"
    elif field == "delay":
        minutes = _whole_number(raw.get("delay_minutes", ""), "delay_minutes", "The delay")
        if not 0 <= minutes * 60 <= MAX_DELAY_SECONDS:
            raise ValidationError(
                "The delay must be between 0 minutes and 7 days.", "delay_minutes"
            )
        broadcast.delay_seconds = minutes * 60
        summary = f"delay {minutes} min"
    elif field == "batch_size":
        size = _whole_number(raw.get("batch_size", ""), "batch_size", "The batch size")
        check_batch_size(size, batch_max)
        broadcast.batch_size = size
        summary = f"batch size {size:,}"
    elif field == "run_at":
        broadcast.run_at_override = _parse_run_at(raw, zone, now)
        summary = (
            f"one-off run time {broadcast.run_at_override:%Y-%m-%d %H:%M} UTC"
            if broadcast.run_at_override
            else "one-off run time cleared"
        )
    elif field == "segments":
        summary = _update_ratios(broadcast, raw)
    else:
        raise ValidationError(f"Unknown field {field!r}.")
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


def send_now(app: Flask, *, user: User, now: datetime | None = None) -> Broadcast:
    """Start the upcoming broadcast at once (SPEC 4.1 guards); ValidationError says why not."""
    now = now or utcnow()
    upcoming = upcoming_broadcast()
    if upcoming is None:
        raise ValidationError("There is no upcoming broadcast to send.")
    if not upcoming.first_message.strip():
        raise ValidationError("Write the first message before sending.", "first_message")
    previous = last_started()
    refusal = send_now_refusal(
        now=now,
        run_at_override=upcoming.run_at_override,
        last_started_at=previous.started_at if previous else None,
    )
    if refusal:
        raise ValidationError(refusal)
    started = start_broadcast(
        upcoming.id, now=now, user=user, keep_override=True, zone=app.config["APP_TIMEZONE"]
    )
    if started is None:
        raise ValidationError("This broadcast has just been started by someone else.")
    return started


def recipient_estimate(broadcast: Broadcast) -> int:
    """How many recipients starting now would pick (the same code path, without inserting)."""
    return len(choose_recipients(broadcast, rng=random.Random(0)))


# -- the tick ----------------------------------------------------------------------------------
def run_due_broadcast(app: Flask, now: datetime | None = None) -> dict[str, Any]:
    """Start the upcoming broadcast when its run time is due; skip a run missed beyond the
    catch-up window (recorded in the returned counts, which the tick stores in its job run)."""
    now = now or utcnow()
    upcoming = upcoming_broadcast()
    if upcoming is None:
        return {"broadcast": "none upcoming"}
    if upcoming.scheduled_for is None and schedule_times() != dict.fromkeys(WEEKDAYS):
        # Created before any schedule (or by an import): plan it from now on.
        plan_upcoming(upcoming, after=now, zone=app.config["APP_TIMEZONE"])
        db.session.commit()
    previous = last_started()
    decision = decide(
        run_at=run_time(upcoming),
        now=now,
        last_started_at=previous.started_at if previous else None,
        catch_up=timedelta(minutes=app.config["BROADCAST_CATCHUP_MINUTES"]),
    )
    if decision.action == "skip":
        missed = decision.run_at
        upcoming.run_at_override = None
        plan_upcoming(upcoming, after=now, zone=app.config["APP_TIMEZONE"])
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
        plan_upcoming(upcoming, after=now, zone=app.config["APP_TIMEZONE"])
        db.session.commit()
        return {"broadcast_skipped": "the first message is empty"}
    started = start_broadcast(upcoming.id, now=now, zone=app.config["APP_TIMEZONE"])
    if started is None:
        return {"broadcast": "started elsewhere"}
    return {"broadcast_started": started.id, "recipients": started.recipient_count}


def history_query() -> sa.Select[tuple[Broadcast]]:
    return (
        sa.select(Broadcast)
        .where(Broadcast.status.in_((BroadcastStatus.SENDING, BroadcastStatus.SENT)))
        .order_by(Broadcast.started_at.desc(), Broadcast.id.desc())
    )
