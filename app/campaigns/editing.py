"""Campaigns editing views: new, edit, the include/exclude builder, the CSV step, the live
estimate, the confirmation preview, create/update, delete and unschedule.

One page, one form (`templates/campaigns/partials/_form.html`): the builder, the upload step,
the SMS counters, the label hint and the estimate re-render their own part of it by htmx; the
review, schedule and draft buttons post the whole form. A refused form comes back whole, with
a 422 and each field at fault marked (aria-invalid, aria-describedby its message)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from redis.exceptions import RedisError

from app.auth.routes import local_path
from app.broadcasts.display import time_choices, zone_label
from app.broadcasts.services import segment_choices
from app.campaigns.forms import CampaignForm, check_nul, edit_targeting, form_field, problem_at
from app.campaigns.routes import bp
from app.campaigns.services import (
    EDITABLE,
    CheckedCampaign,
    Preview,
    campaign_upload_purpose,
    check_campaign,
    delete_campaign,
    duration_words,
    estimate,
    label_preview,
    preview_campaign,
    save_campaign,
    unschedule_campaign,
)
from app.extensions import db
from app.htmx import hx_redirect, hx_retarget, is_htmx, vary_on_htmx, wants_partial
from app.jobs.campaigns import enqueue_campaign_label
from app.models import (
    Campaign,
    Role,
    Upload,
    UploadPurpose,
    utcnow,
)
from app.security import checks_nul, require_role
from app.segments.services import label_choices
from app.sending.quiet import quiet_window
from app.sending.sms import count_sms
from app.uploads.services import (
    ACTIVE_STATUSES,
    create_upload,
    enqueue_upload_job,
    issues_page,
    start_import,
)
from app.validation import ValidationError

CAMPAIGN_PURPOSES = (UploadPurpose.CAMPAIGN_LIST, UploadPurpose.PERSONALIZED)


def _zone() -> str:
    return current_app.config["APP_TIMEZONE"]


def _page(body: str, status: int = 200) -> Response:
    return vary_on_htmx(current_app.make_response((body, status)))


# -- what the form shows -----------------------------------------------------------------------
def _upload(upload_id: str) -> Upload | None:
    upload_id = (upload_id or "").strip()
    return db.session.get(Upload, int(upload_id)) if upload_id.isdigit() else None


def _upload_context(upload: Upload | None, **extra: Any) -> dict[str, Any]:
    """What the CSV step shows: the upload's report (the uploads partial), polled while a job
    runs, and its columns as merge fields."""
    context: dict[str, Any] = dict(upload=upload, upload_notice=None, upload_error=None)
    if upload is not None:
        issues, pages = issues_page(upload, 1)
        context.update(
            issues=issues,
            issue_pages=pages,
            issue_page=1,
            upload_polls=upload.status in ACTIVE_STATUSES,
            merge_fields=[c for c in upload.columns or [] if c != upload.phone_column],
        )
    context.update(extra)
    return context


def form_context(
    form: CampaignForm,
    campaign: Campaign | None = None,
    errors: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    errors = errors or {}
    values = form.values
    now = utcnow()
    context = dict(
        form=form,
        values=values,
        targeting=form.targeting,
        campaign=campaign,
        errors=errors,
        invalid_at=problem_at(errors.get("targeting")),
        segments=segment_choices(),
        labels=label_choices(),
        counts={
            "first_message": count_sms(_text(values["first_message"])),
            "second_message": count_sms(_text(values["second_message"])),
        },
        time_choices=time_choices(),
        zone_label=zone_label(_zone()),
        today=now.astimezone(ZoneInfo(_zone())).date().isoformat(),
        label_hint=_label_hint(values["missive_label_name"]),
        action_url=_action_url(campaign),
        estimate=estimate(form.target_input(), now=now, zone=_zone()),
        preview=None,
        # Where the form goes once saved (the sidebar's panel), instead of the campaign's page.
        next_url=local_path(request.values.get("next")),
        **_upload_context(_upload(values["upload_id"])),
    )
    context.update(extra)
    return context


def _action_url(campaign: Campaign | None) -> str:
    """Where the form saves: a new campaign, or this one."""
    if campaign is None:
        return url_for("campaigns.create")
    return url_for("campaigns.update", campaign_id=campaign.id)


def _text(value: str) -> str:
    return (value or "").replace("\r\n", "\n").strip()


def _label_hint(name: str) -> str | None:
    """What happens to the Missive label typed: found (applied) or created; None for none."""
    name = " ".join((name or "").split())
    if "/" in name:
        return "A label name cannot contain “/”."
    state = label_preview(name) if "\x00" not in name else None
    if state == "exists":
        return "Exists in Missive: it will be applied."
    if state == "will be created":
        return "New: it will be created in Missive, then applied."
    return None


def _render_form(form: CampaignForm, campaign: Campaign | None, status: int = 200, **extra):
    """The whole page, or (htmx) the form alone."""
    context = form_context(form, campaign, **extra)
    if wants_partial():
        return _page(render_template("campaigns/partials/_form.html", **context), status)
    page = "campaigns/edit.html" if campaign else "campaigns/new.html"
    return _page(render_template(page, **context), status)


def _refused(form: CampaignForm, campaign: Campaign | None, exc: ValidationError) -> Response:
    """A 422 with the form, its field at fault marked; nothing was saved."""
    db.session.rollback()
    field = form_field(exc.field)
    response = _render_form(form, campaign, 422, errors={field: exc.message})
    if is_htmx():
        hx_retarget(response, "#campaigns-form", "outerHTML show:top")
    return response


def editable(campaign_id: int, *, lock: bool = False) -> Campaign:
    """A campaign that may still change; a started one answers 409 (read-only)."""
    campaign = db.session.get(Campaign, campaign_id, with_for_update=lock or None)
    if campaign is None:
        abort(404)
    if campaign.status not in EDITABLE:
        abort(
            409,
            description=f"This campaign is {campaign.status.value}: a started campaign can "
            "no longer be changed. Its page shows how it went.",
        )
    return campaign


# -- the pages ---------------------------------------------------------------------------------
@bp.get("/new")
@require_role(Role.OPERATOR)
def new():
    return _render_form(CampaignForm.blank(), None)


@bp.get("/<int:campaign_id>/edit")
@require_role(Role.OPERATOR)
def edit(campaign_id: int):
    campaign = editable(campaign_id)
    return _render_form(CampaignForm.from_campaign(campaign, _zone()), campaign)


def _save(campaign: Campaign | None) -> Response:
    form = CampaignForm.from_request(request.form)
    schedule = request.form.get("action") == "schedule"
    now = utcnow()
    try:
        check_nul(request.form)
        saved = save_campaign(
            campaign,
            form.to_input(_zone(), draft=not schedule),
            schedule=schedule,
            user=current_user,
            now=now,
            zone=_zone(),
            ip_address=request.remote_addr,
        )
    except ValidationError as exc:
        return _refused(form, campaign, exc)
    db.session.commit()
    if saved.label_state == "pending":
        _enqueue_label(saved)
    flash(_saved_message(saved, schedule), "success")
    return _go(_next() or url_for("campaigns.show", campaign_id=saved.id))


def _next() -> str | None:
    """The page a form asked to come back to (a path on this site), else None."""
    return local_path(request.form.get("next"))


def _go(target: str) -> Response:
    """After a change: HX-Redirect for htmx (never a redirect followed inside a swap), else 303."""
    if is_htmx():
        return hx_redirect(current_app.make_response(("", 204)), target)
    return redirect(target, code=303)


def _enqueue_label(campaign: Campaign) -> None:
    """Find or create the campaign's Missive label in a job; it never blocks the campaign."""
    try:
        enqueue_campaign_label(campaign.id)
    except (RedisError, OSError):
        flash(
            "The job queue does not answer, so the Missive label is not created yet; it will be "
            "retried. The campaign itself is saved.",
            "error",
        )


def _saved_message(campaign: Campaign, schedule: bool) -> str:
    what = f"Campaign {campaign.title or campaign.id}"
    people = f"about {campaign.estimated_recipients or 0:,} people"
    if not schedule:
        return f"{what} saved as a draft ({people} now). It will not be sent until you schedule it."
    local = campaign.run_at.astimezone(ZoneInfo(_zone()))
    return f"{what} scheduled for {local:%b %-d, %-I:%M %p %Z}: {people}."


@bp.post("/")
@checks_nul
@require_role(Role.OPERATOR)
def create():
    return _save(None)


@bp.post("/<int:campaign_id>/edit")
@checks_nul
@require_role(Role.OPERATOR)
def update(campaign_id: int):
    # Locked while it is saved: a tick starting it meanwhile waits, then sees the new status.
    return _save(editable(campaign_id, lock=True))


@bp.post("/<int:campaign_id>/delete")
@require_role(Role.OPERATOR)
def delete(campaign_id: int):
    campaign = editable(campaign_id, lock=True)
    name = campaign.title or f"#{campaign.id}"
    try:
        delete_campaign(campaign, user=current_user, ip_address=request.remote_addr)
    except ValidationError as exc:
        db.session.rollback()
        abort(409, description=exc.message)
    db.session.commit()
    flash(f"Deleted campaign {name}.", "success")
    return _go(_next() or url_for("campaigns.index"))


@bp.post("/<int:campaign_id>/unschedule")
@require_role(Role.OPERATOR)
def unschedule(campaign_id: int):
    campaign = editable(campaign_id, lock=True)
    try:
        unschedule_campaign(campaign, user=current_user, ip_address=request.remote_addr)
    except ValidationError as exc:
        db.session.rollback()
        abort(409, description=exc.message)
    db.session.commit()
    flash("Unscheduled: it is a draft again and will not be sent until you schedule it.", "success")
    return _go(_next() or url_for("campaigns.show", campaign_id=campaign_id))


# -- the live parts ----------------------------------------------------------------------------
@bp.post("/targeting")
@require_role(Role.OPERATOR)
def targeting():
    """The include/exclude builder re-rendered after an edit (a condition or group added or
    removed); the estimate counts again."""
    form = CampaignForm.from_request(request.form)
    at = request.form.get("at", "")
    edit_targeting(
        form.targeting, request.form.get("action", ""), at, request.form.get(f"add-{at}", "")
    )
    context = dict(
        targeting=form.targeting,
        segments=segment_choices(),
        labels=label_choices(),
        errors={},
        invalid_at=None,
        refresh_estimate=True,
    )
    return _page(render_template("campaigns/partials/_targeting.html", **context))


@bp.post("/estimate")
@require_role(Role.OPERATOR)
def estimate_view():
    """About how many people the target reaches now (the start's own query), or what to fix."""
    form = CampaignForm.from_request(request.form)
    result = estimate(form.target_input(), now=utcnow(), zone=_zone())
    db.session.rollback()
    html = render_template("campaigns/partials/_estimate.html", estimate=result, values=form.values)
    return _page(html)


@bp.post("/sms-count")
@require_role(Role.OPERATOR)
def sms_count():
    """The live character and SMS counter (the broadcasts' partial, with campaigns' ids)."""
    field = request.args.get("field", "first_message")
    if field not in ("first_message", "second_message"):
        abort(404)
    html = render_template(
        "broadcasts/partials/_sms_count.html",
        field=field,
        id_prefix="campaigns",
        count=count_sms(_text(request.form.get(field, ""))[:5000]),
    )
    return _page(html)


@bp.post("/label-hint")
@require_role(Role.OPERATOR)
def label_hint():
    """Whether the Missive label typed exists (it will be applied) or will be created."""
    hint = _label_hint(request.form.get("missive_label_name", "")[:500])
    return _page(render_template("campaigns/partials/_form_label_hint.html", label_hint=hint))


@bp.post("/preview")
@checks_nul
@require_role(Role.OPERATOR)
def preview():
    """The confirmation before scheduling: recipients, each text as it will read, the SMS
    segments it costs, how long sending takes, quiet hours; a 422 with the form if invalid."""
    campaign_id = request.form.get("campaign_id", "")
    campaign = editable(int(campaign_id)) if campaign_id.isdigit() else None
    form = CampaignForm.from_request(request.form)
    now = utcnow()
    try:
        check_nul(request.form)
        checked = check_campaign(form.to_input(_zone()), now=now, zone=_zone())
        result = preview_campaign(
            checked,
            now=now,
            zone=_zone(),
            rate=current_app.config["SEND_RATE_MPS"],
            window=quiet_window(current_app),
        )
    except ValidationError as exc:
        return _refused(form, campaign, exc)
    db.session.rollback()
    context = _preview_context(form, checked, result)
    if wants_partial():
        html = render_template(
            "campaigns/partials/_preview.html",
            campaign=campaign,
            action_url=_action_url(campaign),
            **context,
        )
        return _page(html)
    return _render_form(form, campaign, **context)


def _preview_context(
    form: CampaignForm, checked: CheckedCampaign, result: Preview
) -> dict[str, Any]:
    return dict(
        checked=checked,
        preview=result,
        duration=duration_words(result.duration_seconds),
        send_now=form.values["when"] == "now",
        review_label=_label_hint(checked.missive_label_name or ""),
    )


# -- the CSV step ------------------------------------------------------------------------------
def _render_upload(upload: Upload | None, status: int = 200, **extra: Any) -> Response:
    html = render_template("campaigns/partials/_upload.html", **_upload_context(upload, **extra))
    return _page(html, status)


def _campaign_upload(upload_id: int) -> Upload:
    upload = db.get_or_404(Upload, upload_id)
    if upload.purpose not in CAMPAIGN_PURPOSES:
        abort(404, description="That file was not uploaded for a campaign.")
    return upload


@bp.post("/upload")
@require_role(Role.OPERATOR)
def upload():
    """Accept a CSV for a list or personalized campaign (the uploads pipeline: a quick check,
    then validation in a job); the step shows its progress and report in place."""
    file = request.files.get("file")
    purpose = campaign_upload_purpose(
        request.form.get("target_kind", ""), request.form.get("message_source", "")
    )
    if file is None or not file.filename:
        return _render_upload(
            _upload(request.form.get("upload_id", "")),
            422,
            upload_error="Choose a .csv file to upload.",
        )
    try:
        made = create_upload(
            file.filename,
            file.read(),
            purpose=purpose,
            user=current_user,
            ip_address=request.remote_addr,
        )
    except ValidationError as exc:
        db.session.rollback()
        return _render_upload(
            _upload(request.form.get("upload_id", "")), 422, upload_error=exc.message
        )
    db.session.commit()
    notice = _enqueue_upload(made, "validate_upload")
    return _render_upload(made, upload_notice=notice, refresh_estimate=True)


def _enqueue_upload(upload: Upload, job: str) -> str | None:
    try:
        enqueue_upload_job(upload.id, job)
    except (RedisError, OSError):
        return (
            "The job queue does not answer, so nothing runs yet: the file is saved. "
            "Try again in a minute."
        )
    return None


@bp.get("/uploads/<int:upload_id>/status")
def upload_status(upload_id: int):
    """The CSV step's report, polled every 2 s while its job runs; once it stops, the
    estimate counts again."""
    upload = _campaign_upload(upload_id)
    if not wants_partial():
        return redirect(url_for("uploads.show", upload_id=upload_id))
    context = _upload_context(upload, refresh_estimate=upload.status not in ACTIVE_STATUSES)
    return _page(render_template("campaigns/partials/_form_upload_status.html", **context))


@bp.post("/uploads/<int:upload_id>/import")
@require_role(Role.OPERATOR)
def import_upload(upload_id: int):
    """Import the checked file's valid rows (a job), from the campaign form."""
    upload = _campaign_upload(upload_id)
    notice = None
    try:
        start_import(upload, user=current_user, ip_address=request.remote_addr)
    except ValidationError as exc:
        db.session.rollback()
        notice = exc.message
    else:
        db.session.commit()
        notice = _enqueue_upload(upload, "import_upload")
    html = render_template(
        "campaigns/partials/_form_upload_status.html",
        **_upload_context(upload, upload_notice=notice, refresh_estimate=True),
    )
    return _page(html)
