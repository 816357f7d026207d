"""Contacts pages: the searchable list, a contact with its timeline, edits and opt-out toggles."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.contacts.forms import ContactForm, ReasonForm
from app.contacts.services import (
    ContactStatus,
    contact_labels,
    contact_timeline,
    contacts_query,
    format_attributes,
    row_info,
    set_exclusion,
    set_subscription,
    update_contact,
)
from app.extensions import db
from app.htmx import vary_on_htmx, wants_partial
from app.models import Contact, ContactSource, Role
from app.pagination import page_number
from app.security import require_role
from app.templating import phone
from app.validation import ValidationError

bp = Blueprint("contacts", __name__, url_prefix="/contacts")

# (action, what it sets, flash text)
TOGGLES = {
    "unsubscribe": ("subscription", False, "Unsubscribed"),
    "resubscribe": ("subscription", True, "Resubscribed"),
    "exclude": ("exclusion", True, "Excluded"),
    "include": ("exclusion", False, "Included again"),
}


def _filters() -> dict:
    upload = request.args.get("upload", "")
    status = request.args.get("status", "")
    source = request.args.get("source", "")
    return dict(
        search=request.args.get("q", "").strip()[:100],
        status=status if status in {s.value for s in ContactStatus} else "",
        source=source if source in {s.value for s in ContactSource} else "",
        upload_id=int(upload) if upload.isdigit() and len(upload) < 10 else None,
    )


@bp.get("/")
def index():
    filters = _filters()
    contacts = db.paginate(
        contacts_query(**filters), page=page_number(), per_page=50, error_out=False
    )
    context = dict(contacts=contacts, info=row_info([c.id for c in contacts.items]), **filters)
    if wants_partial():
        html = render_template("contacts/partials/_rows.html", **context)
    else:
        html = render_template(
            "contacts/index.html",
            statuses=list(ContactStatus),
            sources=list(ContactSource),
            **context,
        )
    return vary_on_htmx(current_app.make_response(html))


def _render_show(contact: Contact, form: ContactForm | None = None, reason_form=None, status=200):
    if form is None:
        form = ContactForm(obj=contact)
        form.attributes.data = format_attributes(contact.attributes)
    return (
        render_template(
            "contacts/show.html",
            contact=contact,
            form=form,
            reason_form=reason_form or ReasonForm(),
            timeline=contact_timeline(contact),
            labels=contact_labels(contact),
        ),
        status,
    )


@bp.get("/<int:contact_id>")
def show(contact_id: int):
    return _render_show(db.get_or_404(Contact, contact_id))


@bp.post("/<int:contact_id>")
@require_role(Role.OPERATOR)
def update(contact_id: int):
    contact = db.get_or_404(Contact, contact_id)
    form = ContactForm()
    if form.validate_on_submit():
        try:
            changes = update_contact(
                contact,
                name=form.name.data or "",
                email=form.email.data or "",
                zip_code=form.zip_code.data or "",
                attributes_text=form.attributes.data or "",
                user=current_user,
                ip_address=request.remote_addr,
                zip_region=current_app.config["PHONE_REGION"],
            )
        except ValidationError as exc:
            getattr(form, exc.field or "name").errors.append(exc.message)
        else:
            db.session.commit()
            flash("Saved." if changes else "Nothing changed.", "success" if changes else "info")
            return redirect(url_for("contacts.show", contact_id=contact.id))
    db.session.rollback()
    return _render_show(db.get_or_404(Contact, contact_id), form=form, status=422)


@bp.post("/<int:contact_id>/<action>")
@require_role(Role.OPERATOR)
def toggle(contact_id: int, action: str):
    """Unsubscribe, resubscribe, exclude or include again, with a reason."""
    if action not in TOGGLES:
        abort(404)
    contact = db.get_or_404(Contact, contact_id)
    kind, value, done = TOGGLES[action]
    form = ReasonForm()
    if form.validate_on_submit():
        setter = set_subscription if kind == "subscription" else set_exclusion
        keyword = "subscribed" if kind == "subscription" else "excluded"
        try:
            cancelled = setter(
                contact,
                **{keyword: value},
                reason=form.reason.data,
                user=current_user,
                ip_address=request.remote_addr,
            )
        except ValidationError as exc:
            form.reason.errors.append(exc.message)
        else:
            db.session.commit()
            extra = (
                f" {cancelled:,} pending message{'s' if cancelled != 1 else ''} cancelled."
                if cancelled
                else ""
            )
            message = f"{done} {phone(contact.phone)}.{extra}"
            if wants_partial():  # the sidebar's card, changed in place
                return _status_card(contact, reason_form=ReasonForm(formdata=None), done=message)
            flash(message, "success")
            return redirect(url_for("contacts.show", contact_id=contact.id))
    db.session.rollback()
    contact = db.get_or_404(Contact, contact_id)
    if wants_partial():
        return _status_card(contact, reason_form=form, status=422)
    return _render_show(contact, reason_form=form, status=422)


def _status_card(contact: Contact, *, reason_form: ReasonForm, done: str = "", status=200):
    html = render_template(
        "contacts/partials/_status.html",
        contact=contact,
        labels=contact_labels(contact),
        reason_form=reason_form,
        in_place=True,
        done=done,
    )
    return vary_on_htmx(current_app.make_response((html, status)))
