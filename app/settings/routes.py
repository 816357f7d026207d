"""Settings and user management (admins only for changes; everyone signed in may read)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from app.audit.services import record_audit
from app.auth.services import create_user, list_users, update_user
from app.extensions import db
from app.htmx import is_htmx
from app.models import Role, User
from app.security import require_role
from app.settings.forms import EditUserForm, NewUserForm
from app.settings.services import (
    save_staff_numbers,
    sending_rules,
    staff_numbers,
    transport_status,
)
from app.validation import ValidationError

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _index(staff_value: str | None = None, staff_error: str | None = None, status: int = 200):
    numbers = staff_numbers()
    return (
        render_template(
            "settings/index.html",
            transport=transport_status(current_app.config),
            rules=sending_rules(current_app.config),
            staff=numbers,
            staff_value="\n".join(numbers) if staff_value is None else staff_value,
            staff_error=staff_error,
        ),
        status,
    )


@bp.get("/")
def index():
    return _index()


@bp.post("/staff-numbers")
@require_role(Role.ADMIN)
def update_staff_numbers():
    """The numbers "Test send" goes to; each one checked, all saved or none."""
    raw = request.form.get("staff_numbers", "")[:2000]
    try:
        numbers = save_staff_numbers(raw, user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        if is_htmx():
            raise
        return _index(raw, exc.message, 422)
    db.session.commit()
    count = len(numbers)
    flash(f"Saved {count} staff test number{'' if count == 1 else 's'}.", "success")
    return redirect(url_for("settings.index") + "#settings-staff")


@bp.get("/users")
@require_role(Role.ADMIN)
def users():
    return render_template("settings/users.html", users=list_users(), form=NewUserForm())


@bp.post("/users")
@require_role(Role.ADMIN)
def create():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.password.data, form.role.data, form.name.data)
        except ValidationError as exc:
            getattr(form, exc.field or "email").errors.append(exc.message)
        except IntegrityError:  # the same email added at the same moment by someone else
            db.session.rollback()
            form.email.errors.append("A user with this email already exists.")
        else:
            record_audit(
                "user_create",
                user=current_user,
                obj=user,
                summary=f"Created {user.email} as {user.role}",
                ip_address=request.remote_addr,
            )
            db.session.commit()
            flash(f"{user.email} can now sign in as {user.role}.", "success")
            return redirect(url_for("settings.users"))
    db.session.rollback()
    return render_template("settings/users.html", users=list_users(), form=form), 422


@bp.get("/users/<int:user_id>")
@require_role(Role.ADMIN)
def edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = EditUserForm(obj=user)
    form.role.data = str(user.role)
    return render_template("settings/user_edit.html", user=user, form=form)


@bp.post("/users/<int:user_id>")
@require_role(Role.ADMIN)
def update(user_id: int):
    user = db.get_or_404(User, user_id)
    form = EditUserForm()
    if form.validate_on_submit():
        try:
            changes = update_user(
                user,
                acting_user=current_user,
                name=form.name.data or "",
                role=form.role.data,
                active=form.active.data,
                password=form.password.data or None,
            )
        except ValidationError as exc:
            getattr(form, exc.field or "role").errors.append(exc.message)
        else:
            if changes:
                record_audit(
                    "user_update",
                    user=current_user,
                    obj=user,
                    summary=f"Changed {user.email}: {', '.join(sorted(changes))}",
                    details={k: [str(a), str(b)] for k, (a, b) in changes.items()},
                    ip_address=request.remote_addr,
                )
                db.session.commit()
                flash(f"Saved {user.email}.", "success")
            else:
                flash("Nothing changed.", "info")
            return redirect(url_for("settings.users"))
    db.session.rollback()
    return render_template("settings/user_edit.html", user=user, form=form), 422
