"""Campaigns in the API: upcoming and past lists, create (segments and labels as JSON; a list
or personalized file as multipart), read, patch and delete before the start (If-Match), cancel,
reconcile, the recipient estimate, recipients. Every rule is the dashboard's own service."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app, request
from pydantic import ValidationError as PydanticError
from redis.exceptions import RedisError

from app.api.auth import api_user, needs
from app.api.broadcasts import cancel, recipient_list, reconcile
from app.api.common import (
    check_if_match,
    client_ip,
    etag_of,
    get_or_problem,
    json_body,
    keyset_page,
    parse_json_text,
    zone,
)
from app.api.idempotency import idempotent
from app.api.problems import ApiProblem
from app.api.routes import bp
from app.api.schemas import Campaign as CampaignBody
from app.api.schemas import (
    CampaignCreate,
    CampaignCreated,
    CampaignList,
    CampaignListQuery,
    CampaignMultipart,
    CampaignPatch,
    CampaignTarget,
    CancelResult,
    Estimate,
    RecipientList,
    RecipientQuery,
    ReconcileResult,
)
from app.api.spec import (
    ETAG_OPERATIONS,
    IDEMPOTENCY_HEADER,
    IF_MATCH_HEADER,
    api,
    responses,
    takes_header,
    takes_multipart,
)
from app.api.uploads import upload_body
from app.campaigns.services import (
    EDITABLE,
    CampaignInput,
    campaign_upload_purpose,
    delete_campaign,
    estimate,
    is_past,
    is_upcoming,
    save_campaign,
)
from app.extensions import db
from app.jobs.campaigns import enqueue_campaign_label
from app.jobs.imports import import_upload, validate_upload
from app.models import Campaign, CampaignStatus, Role, Upload, UploadStatus, utcnow
from app.security import public
from app.sends import is_started
from app.sends.stats import display_stats
from app.uploads.services import create_upload, start_import
from app.validation import ValidationError

TAG = ["campaigns"]
EDITABLE_FIELDS = (
    "title",
    "first_message",
    "second_message",
    "delay_seconds",
    "target_kind",
    "targeting",
    "upload_id",
    "message_column",
    "missive_label_name",
    "run_at",
    "status",
)


def campaign_body(campaign: Campaign) -> CampaignBody:
    return CampaignBody(
        id=campaign.id,
        title=campaign.title or "",
        status=campaign.status.value,
        status_note=campaign.status_note,
        first_message=campaign.first_message or "",
        second_message=campaign.second_message,
        delay_seconds=campaign.delay_seconds,
        run_at=campaign.run_at,
        target_kind=campaign.target_kind.value,
        targeting=campaign.targeting or {},
        upload_id=campaign.upload_id,
        message_column=campaign.message_column,
        missive_label_name=campaign.missive_label_name,
        label_state=campaign.label_state,
        estimated_recipients=campaign.estimated_recipients,
        actual_recipients=campaign.actual_recipients,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        created_at=campaign.created_at,
        stats=display_stats(campaign) if is_started(campaign) else None,
    )


def campaign_etag(campaign: Campaign) -> str:
    return etag_of(campaign_body(campaign).model_dump(mode="json", include=set(EDITABLE_FIELDS)))


def _campaign(campaign_id: int) -> Campaign:
    return get_or_problem(Campaign, campaign_id, "campaign")


def _input(body: CampaignCreate) -> CampaignInput:
    return CampaignInput(
        title=body.title,
        first_message=body.first_message,
        second_message=body.second_message,
        delay_seconds=body.delay_seconds,
        target_kind=body.target_kind,
        targeting=body.targeting.model_dump(mode="json"),
        upload_id=body.upload_id,
        message_source=body.message_source,
        missive_label_name=body.missive_label_name,
        run_at=body.run_at,
        send_now=body.send_now,
    )


def _save(campaign: Campaign | None, body: CampaignCreate) -> Campaign:
    if body.run_at is not None and body.run_at.tzinfo is None:
        raise ApiProblem(422, "run_at: give the time with its offset.", field="run_at")
    saved = save_campaign(
        campaign,
        _input(body),
        schedule=body.schedule,
        user=api_user(),
        now=utcnow(),
        zone=zone(),
        ip_address=client_ip(),
    )
    db.session.commit()
    if saved.label_state == "pending":
        try:
            enqueue_campaign_label(saved.id)
        except (RedisError, OSError):
            current_app.logger.warning("campaign %s: label job not queued", saved.id)
    return saved


# -- lists -------------------------------------------------------------------------------------
@bp.get("/v1/campaigns")
@public
@api.validate(
    query=CampaignListQuery, resp=responses(CampaignList), tags=TAG, operation_id="listCampaigns"
)
def list_campaigns():
    """Upcoming campaigns (drafts and scheduled) or past ones (started), newest first, with
    their figures; pages by `next_cursor`."""
    query: CampaignListQuery = request.context.query
    select = sa.select(Campaign)
    select = select.where(is_upcoming() if query.when == "upcoming" else is_past())
    rows, following = keyset_page(select, Campaign.id, query.cursor, query.limit)
    return CampaignList(items=[campaign_body(c) for c in rows], next_cursor=following)


# -- create ------------------------------------------------------------------------------------
def _multipart_body() -> tuple[CampaignCreate, Any]:
    raw = request.form.get("campaign", "")
    if not raw.strip():
        raise ApiProblem(
            422,
            "campaign: send the campaign's fields (target_kind, first_message, …) as JSON text "
            "in the form field `campaign`.",
            field="campaign",
        )
    try:
        text = parse_json_text(raw, "campaign")
    except ApiProblem as problem:
        if problem.field != "campaign":
            raise  # a NUL, naming its field
        raise ApiProblem(
            422, f"{problem.detail} Send the campaign's fields as JSON text.", field="campaign"
        ) from None
    try:
        body = CampaignCreate.model_validate(text)
    except PydanticError as exc:
        errors = [
            {
                "field": ".".join(["campaign", *(str(p) for p in e["loc"])]),
                "message": e["msg"],
            }
            for e in exc.errors(include_url=False)
        ]
        raise ApiProblem(
            422, f"{errors[0]['field']}: {errors[0]['message']}", errors=errors
        ) from None
    file = request.files.get("file")
    if file is None or not file.filename:
        raise ApiProblem(422, "file: attach the CSV file as `file`.", field="file")
    names = [f"{field} ({part.filename})" for field, part in request.files.items(multi=True)]
    if len(names) > 1:
        raise ApiProblem(
            422,
            f"file: send one CSV file per campaign, as `file` (this request has {len(names)}: "
            f"{', '.join(names)}).",
            field="file",
        )
    if body.target_kind == "segments":
        raise ApiProblem(
            422,
            "target_kind: a file is for an uploaded_list or personalized campaign.",
            field="campaign.target_kind",
        )
    return body, file


def _bad_file(upload: Upload | None, filename: str, message: str) -> ApiProblem:
    return ApiProblem(
        422,
        f"{filename}: {message}",
        field="file",
        extra={"filename": filename, "upload_id": upload.id if upload else None},
    )


def _import_file(body: CampaignCreate, file: Any) -> Upload:
    """The uploads pipeline, run now instead of in the jobs (the same job functions): accept
    (the quick whole-file check), validate, import the valid rows. A file that fails any step
    is a 422 naming it; the upload stays with its report."""
    filename = file.filename
    try:
        upload = create_upload(
            filename,
            file.read(),
            purpose=campaign_upload_purpose(body.target_kind, body.message_source),
            user=api_user(),
            ip_address=client_ip(),
        )
    except ValidationError as exc:
        db.session.rollback()
        raise _bad_file(None, filename, exc.message) from exc
    db.session.commit()
    validate_upload(upload.id)
    db.session.refresh(upload)
    if upload.status is UploadStatus.FAILED:
        raise _bad_file(upload, filename, upload.error_message or "it could not be read.")
    try:
        start_import(upload, user=api_user(), ip_address=client_ip())
    except ValidationError as exc:
        db.session.rollback()
        raise _bad_file(upload, filename, exc.message) from exc
    db.session.commit()
    import_upload(upload.id)
    db.session.refresh(upload)
    if upload.status is not UploadStatus.DONE:
        raise _bad_file(upload, filename, upload.error_message or "the import did not finish.")
    return upload


@bp.post("/v1/campaigns")
@public
@needs(Role.OPERATOR)
@idempotent
@api.validate(
    json=CampaignCreate,
    resp=responses(CampaignCreated, 201),
    tags=TAG,
    operation_id="createCampaign",
)
def create_campaign():
    """Create a campaign: scheduled (`schedule`, with `run_at` or `send_now`) or a draft.

    Segments and labels: JSON. An uploaded list or personalized rows: multipart/form-data with
    `file` (the CSV) and `campaign` (these fields as JSON text); the file is checked and its
    valid rows imported first (its report: /uploads/{id}), and a bad file is a 422 naming it.
    Take an Idempotency-Key: a retry with it gets this answer and never creates twice."""
    upload = None
    if request.mimetype == "multipart/form-data":
        body, file = _multipart_body()
        upload = _import_file(body, file)
        body = body.model_copy(update={"upload_id": upload.id})
    else:
        body = json_body()
    try:
        saved = _save(None, body)
    except ValidationError as exc:
        if upload is None:
            raise
        db.session.rollback()
        raise ApiProblem(
            422,
            f"{exc.field or 'campaign'}: {exc.message} (the file is imported as upload "
            f"{upload.id}: send upload_id {upload.id} with the fix, no need to send it again)",
            field=exc.field,
            extra={"upload_id": upload.id},
        ) from exc
    created = CampaignCreated(
        **campaign_body(saved).model_dump(), upload=upload_body(upload) if upload else None
    )
    return created, 201, {"ETag": campaign_etag(saved)}


takes_header("createCampaign", IDEMPOTENCY_HEADER)
takes_multipart("createCampaign", CampaignMultipart)
ETAG_OPERATIONS.add("createCampaign")


@bp.post("/v1/campaigns/estimate")
@public
@needs(Role.OPERATOR)  # as on the dashboard: the estimate is part of editing a campaign
@api.validate(
    json=CampaignTarget, resp=responses(Estimate), tags=TAG, operation_id="estimateCampaign"
)
def estimate_campaign():
    """How many people a target reaches now, without saving anything (the start's own query);
    a target that does not work says why in `error`."""
    body: CampaignTarget = json_body()
    values = CampaignInput(
        first_message=body.first_message,
        target_kind=body.target_kind,
        targeting=body.targeting.model_dump(mode="json"),
        upload_id=body.upload_id,
        message_source=body.message_source,
    )
    result = estimate(values, now=utcnow(), zone=zone())
    db.session.rollback()
    return Estimate(
        recipients=result.recipients, error=result.error, merge_issues=result.merge_issues
    )


# -- one campaign ------------------------------------------------------------------------------
@bp.get("/v1/campaigns/<int:campaign_id>")
@public
@api.validate(resp=responses(CampaignBody), tags=TAG, operation_id="getCampaign")
def get_campaign(campaign_id: int):
    """One campaign with its figures, and the ETag to patch it with."""
    campaign = _campaign(campaign_id)
    return campaign_body(campaign), 200, {"ETag": campaign_etag(campaign)}


ETAG_OPERATIONS.add("getCampaign")


def _editable(campaign_id: int) -> Campaign:
    campaign = (
        db.session.get(Campaign, campaign_id, with_for_update=True) if campaign_id < 2**31 else None
    )
    if campaign is None:
        raise ApiProblem(404, f"There is no campaign {campaign_id}.")
    if campaign.status not in EDITABLE:
        raise ApiProblem(
            409,
            f"This campaign is {campaign.status.value}: a started campaign can no longer be "
            "changed.",
        )
    return campaign


@bp.patch("/v1/campaigns/<int:campaign_id>")
@public
@needs(Role.OPERATOR)
@api.validate(
    json=CampaignPatch,
    resp=responses(CampaignBody, 200, 409, 412, 428),
    tags=TAG,
    operation_id="patchCampaign",
)
def patch_campaign(campaign_id: int):
    """Change a campaign that has not started (send `If-Match` with its ETag); the whole
    campaign is checked again as on the dashboard, and nothing changes when it is refused."""
    patch: CampaignPatch = json_body()
    campaign = _editable(campaign_id)
    check_if_match(campaign_etag(campaign))
    current = {
        "title": campaign.title or "",
        "first_message": campaign.first_message or "",
        "second_message": campaign.second_message or "",
        "delay_seconds": campaign.delay_seconds,
        "target_kind": campaign.target_kind.value,
        "targeting": campaign.targeting or {"include": [], "exclude": []},
        "upload_id": campaign.upload_id,
        "message_source": "column" if campaign.message_column else "template",
        "missive_label_name": campaign.missive_label_name or "",
        "run_at": campaign.run_at,
        "send_now": False,
        "schedule": campaign.status is CampaignStatus.SCHEDULED,
    }
    changes = {
        name: value
        for name, value in patch.model_dump(exclude_unset=True).items()
        if not (value is None and name not in ("run_at", "upload_id"))
    }
    try:
        body = CampaignCreate.model_validate({**current, **changes})
    except PydanticError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ApiProblem(422, f"{field}: {first['msg']}", field=field) from None
    saved = _save(campaign, body)
    return campaign_body(saved), 200, {"ETag": campaign_etag(saved)}


takes_header("patchCampaign", IF_MATCH_HEADER)
ETAG_OPERATIONS.add("patchCampaign")


@bp.delete("/v1/campaigns/<int:campaign_id>")
@public
@needs(Role.OPERATOR)
@api.validate(resp=responses(None, 204, 409), tags=TAG, operation_id="deleteCampaign")
def delete_campaign_view(campaign_id: int):
    """Delete a campaign that has not started (a started one can be cancelled)."""
    campaign = _editable(campaign_id)
    try:
        delete_campaign(campaign, user=api_user(), ip_address=client_ip())
    except ValidationError as exc:
        raise ApiProblem(409, exc.message) from exc
    db.session.commit()
    return "", 204


@bp.post("/v1/campaigns/<int:campaign_id>/cancel")
@public
@needs(Role.OPERATOR)
@api.validate(resp=responses(CancelResult, 200, 409), tags=TAG, operation_id="cancelCampaign")
def cancel_campaign(campaign_id: int):
    """Stop a sending campaign: its waiting messages are cancelled ("send cancelled")."""
    return cancel(_campaign(campaign_id))


@bp.post("/v1/campaigns/<int:campaign_id>/reconcile")
@public
@needs(Role.OPERATOR)
@api.validate(
    resp=responses(ReconcileResult, 202, 409, 503), tags=TAG, operation_id="reconcileCampaign"
)
def reconcile_campaign(campaign_id: int):
    """Ask the provider for the status of its open messages (a job; one at a time per send)."""
    campaign = _campaign(campaign_id)
    if not is_started(campaign):
        raise ApiProblem(409, "This campaign has not started: it has no messages to check.")
    return reconcile(campaign)


@bp.get("/v1/campaigns/<int:campaign_id>/recipients")
@public
@api.validate(
    query=RecipientQuery,
    resp=responses(RecipientList),
    tags=TAG,
    operation_id="listCampaignRecipients",
)
def campaign_recipients(campaign_id: int):
    """Its messages recipient by recipient, filtered by status or phone, by cursor."""
    return recipient_list(_campaign(campaign_id), request.context.query)
