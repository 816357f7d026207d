"""Broadcasts in the API: the list with statistics, one broadcast, its recipients, the upcoming
one (read, patch with If-Match), send now and test send (with Idempotency-Key), cancel,
reconcile statuses, and the weekly schedule. Every rule is the dashboard's own service."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, request
from redis.exceptions import RedisError

from app.api.auth import api_user, needs
from app.api.common import (
    check_if_match,
    client_ip,
    etag_of,
    get_or_problem,
    json_body,
    keyset_page,
    zone,
)
from app.api.idempotency import idempotent
from app.api.problems import ApiProblem
from app.api.routes import bp
from app.api.schemas import Broadcast as BroadcastBody
from app.api.schemas import (
    BroadcastList,
    BroadcastSegmentOut,
    CancelResult,
    PageQuery,
    Recipient,
    RecipientList,
    RecipientQuery,
    ReconcileResult,
    Schedule,
    ScheduleOut,
    SegmentShare,
    SendNowResult,
    TestSendResult,
    UpcomingPatch,
)
from app.api.spec import (
    ETAG_OPERATIONS,
    IDEMPOTENCY_HEADER,
    IF_MATCH_HEADER,
    api,
    responses,
    takes_header,
)
from app.broadcasts.cadence import WEEKDAYS
from app.broadcasts.services import (
    active_schedule,
    run_time,
    save_schedule,
    saved_upcoming,
    send_now,
    test_send_check,
    upcoming_broadcast,
    upcoming_or_draft,
    update_upcoming,
)
from app.extensions import db
from app.jobs import QUEUE_DEFAULT, get_queue
from app.jobs.maintenance import enqueue_send_reconcile
from app.jobs.sending import enqueue_sending
from app.models import Broadcast, BroadcastStatus, Role
from app.security import public
from app.sending.quiet import quiet_warning, quiet_window
from app.sends import is_started
from app.sends.control import cancel_send
from app.sends.results import clean_filters, recipients_page
from app.sends.stats import display_stats
from app.settings.services import staff_numbers
from app.validation import ValidationError

TAG = ["broadcasts"]


def broadcast_body(broadcast: Broadcast) -> BroadcastBody:
    return BroadcastBody(
        id=broadcast.id or 0,
        status=broadcast.status.value,
        first_message=broadcast.first_message or "",
        second_message=broadcast.second_message,
        delay_minutes=(broadcast.delay_seconds or 0) // 60,
        batch_size=broadcast.batch_size,
        run_at_override=broadcast.run_at_override,
        scheduled_for=broadcast.scheduled_for,
        run_at=run_time(broadcast),
        started_at=broadcast.started_at,
        finished_at=broadcast.finished_at,
        recipient_count=broadcast.recipient_count,
        segments=[
            BroadcastSegmentOut(
                segment_id=link.segment_id,
                name=link.segment.name if link.segment else "",
                ratio=link.ratio,
                is_filler=link.is_filler,
            )
            for link in sorted(broadcast.segment_links, key=lambda link: link.position)
        ],
        stats=display_stats(broadcast) if is_started(broadcast) else None,
    )


def _started(broadcast_id: int) -> Broadcast:
    broadcast = get_or_problem(Broadcast, broadcast_id, "broadcast")
    if broadcast.status is BroadcastStatus.UPCOMING:
        raise ApiProblem(
            404, f"Broadcast {broadcast_id} has not started: read /broadcasts/upcoming."
        )
    return broadcast


# -- the list and one broadcast ------------------------------------------------------------------
@bp.get("/v1/broadcasts")
@public
@api.validate(
    query=PageQuery, resp=responses(BroadcastList), tags=TAG, operation_id="listBroadcasts"
)
def list_broadcasts():
    """Started broadcasts (sending, sent, cancelled), newest first, with their figures.

    Pages by `next_cursor`: pass it as `cursor` for the next page."""
    query: PageQuery = request.context.query
    rows, following = keyset_page(
        sa.select(Broadcast).where(Broadcast.status != BroadcastStatus.UPCOMING),
        Broadcast.id,
        query.cursor,
        query.limit,
    )
    return BroadcastList(items=[broadcast_body(b) for b in rows], next_cursor=following)


@bp.get("/v1/broadcasts/<int:broadcast_id>")
@public
@api.validate(resp=responses(BroadcastBody), tags=TAG, operation_id="getBroadcast")
def get_broadcast(broadcast_id: int):
    """One started broadcast with its figures (people and messages, SPEC 8)."""
    return broadcast_body(_started(broadcast_id))


@bp.get("/v1/broadcasts/<int:broadcast_id>/recipients")
@public
@api.validate(
    query=RecipientQuery,
    resp=responses(RecipientList),
    tags=TAG,
    operation_id="listBroadcastRecipients",
)
def broadcast_recipients(broadcast_id: int):
    """Its messages recipient by recipient, filtered by status or phone, by cursor."""
    return recipient_list(_started(broadcast_id), request.context.query)


def recipient_list(send: Any, query: RecipientQuery) -> RecipientList:
    status, search = clean_filters(query.status, query.q)
    if query.status and not status:
        raise ApiProblem(422, f"status: unknown status {query.status!r}.", field="status")
    page = recipients_page(
        send, status=status, search=search, after=query.cursor or "", limit=query.limit
    )
    return RecipientList(
        items=[
            Recipient(
                message_id=row.id,
                contact_id=row.contact_id,
                phone=row.phone,
                name=row.name,
                step=row.step,
                body=row.body,
                status=row.status,
                error_code=row.error_code,
                error_message=row.error_message,
                cancel_reason=row.cancel_reason,
                sent_at=row.sent_at,
                delivered_at=row.delivered_at,
                segment=row.segment,
            )
            for row in page.rows
        ],
        next_cursor=page.next_cursor,
    )


# -- the upcoming broadcast ----------------------------------------------------------------------
def _upcoming_etag(broadcast: Broadcast) -> str:
    """The version of what an edit may change (not its id: the first edit saves the draft)."""
    body = broadcast_body(broadcast).model_dump(
        mode="json",
        include={
            "first_message",
            "second_message",
            "delay_minutes",
            "batch_size",
            "run_at_override",
            "segments",
        },
    )
    return etag_of(body)


@bp.get("/v1/broadcasts/upcoming")
@public
@api.validate(resp=responses(BroadcastBody), tags=TAG, operation_id="getUpcomingBroadcast")
def get_upcoming():
    """The upcoming broadcast (an empty one planned from the schedule if none is saved yet),
    with the ETag to send back in If-Match when patching it."""
    upcoming = upcoming_or_draft(zone())
    return broadcast_body(upcoming), 200, {"ETag": _upcoming_etag(upcoming)}


ETAG_OPERATIONS.add("getUpcomingBroadcast")


def _form_values(patch: UpcomingPatch, broadcast: Broadcast) -> list[tuple[str, dict[str, str]]]:
    """The patch as the dashboard's field saves (UPCOMING_FIELDS): one (field, form values)
    per given field, so each goes through the same checks."""
    given = patch.model_fields_set
    fields: list[tuple[str, dict[str, str]]] = []
    if "first_message" in given:
        fields.append(("first_message", {"first_message": patch.first_message or ""}))
    if "second_message" in given:
        fields.append(("second_message", {"second_message": patch.second_message or ""}))
    if "delay_minutes" in given:
        value = "" if patch.delay_minutes is None else str(patch.delay_minutes)
        fields.append(("delay", {"delay_minutes": value}))
    if "batch_size" in given:
        value = "" if patch.batch_size is None else str(patch.batch_size)
        fields.append(("batch_size", {"batch_size": value}))
    if "run_at" in given:
        if patch.run_at is None:
            fields.append(("run_at", {"clear": "1"}))
        else:
            if patch.run_at.tzinfo is None:
                raise ApiProblem(422, "run_at: give the time with its offset.", field="run_at")
            local = patch.run_at.astimezone(ZoneInfo(zone()))
            if local.second or local.microsecond:
                raise ApiProblem(422, "run_at: run times go in 15-minute steps.", field="run_at")
            fields.append(
                ("run_at", {"run_date": f"{local:%Y-%m-%d}", "run_time": f"{local:%H:%M}"})
            )
    if "segments" in given or "filler_segment_id" in given:
        shares = patch.segments
        if shares is None:
            shares = [
                SegmentShare(segment_id=link.segment_id, ratio=link.ratio)
                for link in broadcast.segment_links
            ]
        values = {f"ratio_{share.segment_id}": str(share.ratio) for share in shares}
        if "filler_segment_id" in given:
            filler = patch.filler_segment_id
        else:
            filler = next(
                (link.segment_id for link in broadcast.segment_links if link.is_filler), None
            )
        values["filler"] = str(filler) if filler else ""
        fields.append(("segments", values))
    return fields


@bp.patch("/v1/broadcasts/upcoming")
@public
@needs(Role.OPERATOR)
@api.validate(
    json=UpcomingPatch,
    resp=responses(BroadcastBody, 200, 412, 428),
    tags=TAG,
    operation_id="patchUpcomingBroadcast",
)
def patch_upcoming():
    """Change the upcoming broadcast: texts, delay, batch size, one-off run time, segment
    shares. Send `If-Match` with the ETag you read; every field is checked as on the dashboard
    and nothing changes when one is refused."""
    patch: UpcomingPatch = json_body()
    current = upcoming_broadcast()
    if current is not None:
        db.session.refresh(current, with_for_update=True)
    check_if_match(_upcoming_etag(current or upcoming_or_draft(zone())))
    upcoming = current or saved_upcoming(zone())
    for field, values in _form_values(patch, upcoming):
        update_upcoming(
            upcoming,
            field,
            values,
            user=api_user(),
            batch_max=current_app.config["BATCH_SIZE_MAX"],
            zone=zone(),
        )
    db.session.commit()
    upcoming = upcoming_broadcast()
    return broadcast_body(upcoming), 200, {"ETag": _upcoming_etag(upcoming)}


takes_header("patchUpcomingBroadcast", IF_MATCH_HEADER)
ETAG_OPERATIONS.add("patchUpcomingBroadcast")


@bp.post("/v1/broadcasts/upcoming/send-now")
@public
@needs(Role.OPERATOR)
@idempotent
@api.validate(resp=responses(SendNowResult, 201), tags=TAG, operation_id="sendUpcomingNow")
def send_upcoming_now():
    """Start the upcoming broadcast at once (unless its one-off time is under 90 minutes away,
    or one started less than 2 hours ago: the answer says so). Take an Idempotency-Key: a retry
    with it gets this answer and never starts a second broadcast."""
    started = send_now(user=api_user(), zone=zone())
    enqueue_sending(current_app)
    note = quiet_warning(started.started_at, zone(), quiet_window(current_app))
    return SendNowResult(broadcast=broadcast_body(started), note=note), 201


takes_header("sendUpcomingNow", IDEMPOTENCY_HEADER)


@bp.post("/v1/broadcasts/upcoming/test-send")
@public
@needs(Role.OPERATOR)
@idempotent
@api.validate(resp=responses(TestSendResult, 202), tags=TAG, operation_id="testSendUpcoming")
def test_send_upcoming():
    """Send the current texts to the staff test numbers (Settings); statistics untouched."""
    upcoming = upcoming_broadcast()
    numbers = staff_numbers()
    refusal = test_send_check(upcoming, numbers)
    if refusal:
        raise ValidationError(refusal, "first_message" if "first message" in refusal else None)
    get_queue(current_app, QUEUE_DEFAULT).enqueue(
        "app.jobs.broadcasts.test_send_broadcast", upcoming.id, api_user().id, result_ttl=3600
    )
    return TestSendResult(queued_to=len(numbers)), 202


takes_header("testSendUpcoming", IDEMPOTENCY_HEADER)


@bp.post("/v1/broadcasts/<int:broadcast_id>/cancel")
@public
@needs(Role.OPERATOR)
@api.validate(resp=responses(CancelResult, 200, 409), tags=TAG, operation_id="cancelBroadcast")
def cancel_broadcast(broadcast_id: int):
    """Stop a sending broadcast: its waiting messages are cancelled ("send cancelled")."""
    return cancel(_started(broadcast_id))


def cancel(send: Any) -> CancelResult:
    try:
        cancelled = cancel_send(send, user=api_user(), ip_address=client_ip())
    except ValidationError as exc:
        raise ApiProblem(409, exc.message) from exc
    db.session.commit()
    return CancelResult(cancelled_messages=cancelled, status=send.status.value)


@bp.post("/v1/broadcasts/<int:broadcast_id>/reconcile")
@public
@needs(Role.OPERATOR)
@api.validate(
    resp=responses(ReconcileResult, 202, 503), tags=TAG, operation_id="reconcileBroadcast"
)
def reconcile_broadcast(broadcast_id: int):
    """Ask the provider for the status of its open messages (a job; one at a time per send)."""
    return reconcile(_started(broadcast_id))


def reconcile(send: Any):
    try:
        job_id = enqueue_send_reconcile(send, current_app._get_current_object())
    except (RedisError, OSError) as exc:
        raise ApiProblem(
            503, "The job queue does not answer: nothing was queued. Try again."
        ) from exc
    return ReconcileResult(job_id=job_id), 202


# -- the weekly schedule -------------------------------------------------------------------------
def _schedule_body() -> ScheduleOut:
    schedule = active_schedule()
    times = schedule.times() if schedule else dict.fromkeys(WEEKDAYS)
    return ScheduleOut(
        version=schedule.id if schedule else None,
        time_zone=zone(),
        default_batch_size=schedule.default_batch_size if schedule else 1000,
        **times,
    )


@bp.get("/v1/schedule")
@public
@api.validate(resp=responses(ScheduleOut), tags=TAG, operation_id="getSchedule")
def get_schedule():
    """The weekly schedule (local times in `time_zone`, or null) and the default batch size."""
    return _schedule_body()


@bp.put("/v1/schedule")
@public
@needs(Role.OPERATOR)
@api.validate(json=Schedule, resp=responses(ScheduleOut), tags=TAG, operation_id="putSchedule")
def put_schedule():
    """Replace the weekly schedule: a new version (the old ones stay as history); the upcoming
    broadcast is planned again. Times go in 15-minute steps, inside quiet hours when on."""
    body: Schedule = json_body()
    times = {day: getattr(body, day) for day in WEEKDAYS}
    for day, at in times.items():
        if at is not None and at.tzinfo is not None:
            raise ApiProblem(422, f"{day}: a local time, without an offset.", field=day)
    save_schedule(
        times,
        body.default_batch_size,
        user=api_user(),
        batch_max=current_app.config["BATCH_SIZE_MAX"],
        zone=zone(),
        window=quiet_window(current_app),
    )
    db.session.commit()
    return _schedule_body()
