"""Segments pages: the list, the builder with its live count, and raw SQL segments (admins)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.extensions import db, get_redis
from app.htmx import vary_on_htmx, wants_partial
from app.models import Role, Segment
from app.pagination import page_number
from app.security import require_role
from app.segments.builder import ROOT, edit_rule, rule_from_form
from app.segments.forms import SegmentForm, SqlSegmentForm
from app.segments.rules import CONDITION_TYPES, empty_rule, validate_rule
from app.segments.services import (
    Audience,
    CountCache,
    count_segment_contacts,
    delete_segment,
    label_choices,
    preview_rule,
    save_segment,
    segments_query,
    upload_choices,
)
from app.segments.sql_guard import ALLOWED_COLUMNS
from app.validation import ValidationError

bp = Blueprint("segments", __name__, url_prefix="/segments")

RAW_SQL_COUNT_ROLE = "Operators see the counts of raw SQL segments."


def _builder_context(rule: dict[str, Any], error_node: str | None = None) -> dict[str, Any]:
    """What the builder partial needs; `error_node` is the path of the condition or group a
    refused save names (its fields are marked invalid and described by the message)."""
    return dict(
        rule=rule,
        error_node=error_node,
        root=ROOT,
        condition_types=CONDITION_TYPES,
        labels=label_choices(),
        uploads=upload_choices(),
    )


def _render_page(
    segment: Segment | None,
    form,
    rule=None,
    status: int = 200,
    rule_error=None,
    error_node: str | None = None,
):
    if isinstance(form, SqlSegmentForm):
        html = render_template(
            "segments/sql.html", segment=segment, form=form, allowed_columns=ALLOWED_COLUMNS
        )
        return html, status
    context = _builder_context(rule if rule is not None else empty_rule(), error_node)
    html = render_template(
        "segments/edit.html", segment=segment, form=form, rule_error=rule_error, **context
    )
    return html, status


@bp.get("/")
def index():
    search = request.args.get("q", "").strip()[:100]
    segments = db.paginate(segments_query(search), page=page_number(), per_page=50, error_out=False)
    context = dict(segments=segments, search=search)
    if wants_partial():
        html = render_template("segments/partials/_rows.html", **context)
    else:
        html = render_template("segments/index.html", **context)
    return vary_on_htmx(current_app.make_response(html))


@bp.get("/new")
@require_role(Role.OPERATOR)
def new():
    if request.args.get("kind") == "sql":
        if not current_user.has_role(Role.ADMIN):
            abort(403, description="Only admins may write raw SQL segments.")
        return _render_page(None, SqlSegmentForm())
    return _render_page(None, SegmentForm())


def _save(segment: Segment | None):
    """Create or update from the posted form; 422 with the page re-rendered when anything is off."""
    sql_kind = (segment is not None and segment.raw_sql is not None) or (
        segment is None and request.form.get("kind") == "sql"
    )
    if sql_kind and not current_user.has_role(Role.ADMIN):
        abort(403, description="Only admins may write raw SQL segments.")
    form = SqlSegmentForm() if sql_kind else SegmentForm()
    rule = None if sql_kind else rule_from_form(request.form)
    rule_error = error_node = None
    notes: list[str] = []
    if form.validate_on_submit():
        try:
            saved = save_segment(
                segment,
                name=form.name.data,
                description=form.description.data or "",
                rule=rule,
                raw_sql=form.raw_sql.data if sql_kind else None,
                user=current_user,
                ip_address=request.remote_addr,
                zip_region=current_app.config["PHONE_REGION"],
                notes=notes,
            )
        except ValidationError as exc:
            field = getattr(form, exc.field or "", None)
            if field is not None:
                field.errors.append(exc.message)
            else:
                rule_error = exc.message
                error_node = getattr(exc, "node", None)
        else:
            db.session.commit()
            flash(f"Saved segment {saved.name}.", "success")
            for note in notes:
                flash(note, "info")
            return redirect(url_for("segments.show", segment_id=saved.id))
    db.session.rollback()
    if segment is not None:
        segment = db.session.get(Segment, segment.id)
    return _render_page(segment, form, rule, 422, rule_error, error_node)


@bp.post("/")
@require_role(Role.OPERATOR)
def create():
    return _save(None)


@bp.get("/<int:segment_id>")
def show(segment_id: int):
    segment = db.get_or_404(Segment, segment_id)
    if segment.raw_sql is not None:
        return _render_page(segment, SqlSegmentForm(obj=segment))
    return _render_page(segment, SegmentForm(obj=segment), segment.rule)


@bp.post("/<int:segment_id>")
@require_role(Role.OPERATOR)
def update(segment_id: int):
    return _save(db.get_or_404(Segment, segment_id))


@bp.post("/<int:segment_id>/delete")
@require_role(Role.OPERATOR)
def delete(segment_id: int):
    segment = db.get_or_404(Segment, segment_id)
    name = segment.name
    try:
        delete_segment(segment, user=current_user, ip_address=request.remote_addr)
    except ValidationError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("segments.show", segment_id=segment_id))
    db.session.commit()
    flash(f"Deleted segment {name}.", "success")
    return redirect(url_for("segments.index"))


@bp.post("/builder")
def builder():
    """The builder re-rendered after an edit (add/remove a condition or group, change a type)."""
    rule = edit_rule(
        rule_from_form(request.form), request.form.get("action", ""), request.form.get("at", "")
    )
    html = render_template("segments/partials/_builder.html", **_builder_context(rule))
    return vary_on_htmx(current_app.make_response(html))


@bp.post("/preview")
def preview():
    """The live count and a sample for the rule being edited (a message if it is incomplete)."""
    context: dict[str, Any] = {"notes": []}
    try:
        rule = validate_rule(
            rule_from_form(request.form), current_app.config["PHONE_REGION"], context["notes"]
        )
        context["preview"] = preview_rule(rule)
    except ValidationError as exc:
        db.session.rollback()
        context["problem"] = exc.message
    html = render_template("segments/partials/_preview.html", **context)
    return vary_on_htmx(current_app.make_response(html))


@bp.get("/<int:segment_id>/count")
def count(segment_id: int):
    """One segment's counts, loaded lazily by its row in the list. A raw SQL segment runs an
    admin's query, so only operators may count it, and its counts are kept for a minute."""
    segment = db.get_or_404(Segment, segment_id)
    status = 200
    if segment.raw_sql is not None and not current_user.has_role(Role.OPERATOR):
        counts, problem, status = None, RAW_SQL_COUNT_ROLE, 403
    else:
        cache = CountCache(get_redis(current_app), current_app.config["REDIS_KEY_PREFIX"])
        try:
            counts = {
                "broadcast": count_segment_contacts(
                    segment, purpose=Audience.BROADCAST, cache=cache
                ),
                "campaign": count_segment_contacts(segment, purpose=Audience.CAMPAIGN, cache=cache),
            }
            problem = None
        except ValidationError as exc:
            db.session.rollback()
            counts, problem = None, exc.message
    html = render_template(
        "segments/partials/_count.html", segment=segment, counts=counts, problem=problem
    )
    return vary_on_htmx(current_app.make_response((html, status)))
