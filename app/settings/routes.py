"""Settings and user management (admins only for changes; everyone signed in may read)."""

from __future__ import annotations

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
from sqlalchemy.exc import IntegrityError

from app.audit.services import record_audit
from app.auth.services import create_user, list_users, update_user
from app.broadcasts.display import time_choices, zone_label
from app.extensions import db
from app.models import Role, User
from app.security import require_role
from app.sending.sms import count_sms
from app.settings.forms import EditUserForm, NewUserForm
from app.settings.services import (
    BUILTIN_WORDS,
    KEYWORD_KINDS,
    extra_keywords,
    help_reply,
    opt_out_reply,
    parse_quiet_hours_form,
    quiet_hours,
    save_keywords,
    save_quiet_hours,
    save_replies,
    save_staff_numbers,
    sending_rules,
    staff_numbers,
    transport_status,
)
from app.templating import phone
from app.validation import ValidationError

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _index(values: dict[str, str] | None = None, errors: dict[str, str] | None = None, status=200):
    """The Settings page; after a refused save, `values` are what was typed and `errors` say
    what to fix (by field)."""
    numbers = staff_numbers()
    window = quiet_hours(current_app.config["QUIET_HOURS"])
    extra = extra_keywords()
    current = {
        # As people read them (national at home); saving normalises them to E.164 again.
        "staff_numbers": "\n".join(phone(number) for number in numbers),
        "enabled": "1" if window else "",
        "start": window[0] if window else "09:00",
        "end": window[1] if window else "20:00",
        **{kind: "\n".join(words) for kind, words in extra.items()},
        "help_reply": help_reply(current_app.config["HELP_REPLY"]) or "",
        "opt_out_reply": opt_out_reply() or "",
    }
    form = {**current, **(values or {})}
    return (
        render_template(
            "settings/index.html",
            transport=transport_status(current_app.config),
            rules=sending_rules(current_app.config),
            staff=numbers,
            form=form,
            errors=errors or {},
            time_choices=time_choices(),
            end_choices=[*time_choices()[1:], ("24:00", "midnight")],
            zone_label=zone_label(current_app.config["APP_TIMEZONE"]),
            builtin=BUILTIN_WORDS,
            counts={
                "help_reply": count_sms(form["help_reply"]),
                "opt_out_reply": count_sms(form["opt_out_reply"]),
            },
        ),
        status,
    )


@bp.get("/")
def index():
    return _index()


def _save(anchor: str, fields: tuple[str, ...], save, saved: str):
    """One settings form: save through `save(values)`; 422 with the form again when refused."""
    values = {field: request.form.get(field, "")[:4000] for field in fields}
    try:
        message = save(values)
    except ValidationError as exc:
        db.session.rollback()
        return _index(values, {exc.field or fields[0]: exc.message}, 422)
    db.session.commit()
    flash(message if isinstance(message, str) else saved, "success")
    return redirect(url_for("settings.index") + anchor)


@bp.post("/staff-numbers")
@require_role(Role.ADMIN)
def update_staff_numbers():
    """The numbers "Test send" goes to; each one checked, all saved or none."""

    def save(values) -> str:
        count = len(save_staff_numbers(values["staff_numbers"], user=current_user))
        return f"Saved {count} staff test number{'' if count == 1 else 's'}."

    return _save("#settings-staff", ("staff_numbers",), save, "Staff test numbers saved.")


@bp.post("/quiet-hours")
@require_role(Role.ADMIN)
def update_quiet_hours():
    """Quiet hours on or off, and the window (recipients' local time)."""

    def save(values) -> None:
        save_quiet_hours(parse_quiet_hours_form(values), user=current_user)

    return _save(
        "#settings-quiet-hours",
        ("enabled", "start", "end"),
        save,
        "Quiet hours saved: they apply from the next batch a worker claims.",
    )


@bp.post("/keywords")
@require_role(Role.ADMIN)
def update_keywords():
    """Extra opt-out, opt-in and help words."""
    return _save(
        "#settings-keywords",
        tuple(KEYWORD_KINDS),
        lambda values: save_keywords(values, user=current_user) and None,
        "Keywords saved: they apply to the next message that comes in.",
    )


@bp.post("/replies")
@require_role(Role.ADMIN)
def update_replies():
    """The HELP reply and the optional opt-out confirmation."""
    return _save(
        "#settings-replies",
        ("help_reply", "opt_out_reply"),
        lambda values: save_replies(
            values["help_reply"], values["opt_out_reply"], user=current_user
        ),
        "Automatic replies saved.",
    )


@bp.post("/sms-count")
@require_role(Role.ADMIN)
def sms_count():
    """The live character and SMS count of an automatic reply being typed."""
    field = request.args.get("field", "")
    if field not in ("help_reply", "opt_out_reply"):
        abort(404)
    count = count_sms(request.form.get(field, "")[:4000].strip())
    return render_template("settings/partials/_reply_count.html", field=field, count=count)


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


from app.settings import tokens  # noqa: E402, F401  (registers the API token views on bp)
