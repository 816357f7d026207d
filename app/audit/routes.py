"""The audit log page: newest first, filter by action, search, paginated."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from app.audit.services import audit_actions, audit_query
from app.extensions import db
from app.htmx import vary_on_htmx, wants_partial
from app.labels import audit_action_label
from app.pagination import page_number

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/")
def index():
    search = request.args.get("q", "").strip()[:100]
    action = request.args.get("action", "").strip()[:60]
    entries = db.paginate(
        audit_query(search, action), page=page_number(), per_page=50, error_out=False
    )
    context = dict(entries=entries, search=search, action=action)
    if wants_partial():
        html = render_template("audit/partials/_rows.html", **context)
    else:
        # The filter lists actions by the label a person reads; the option values stay the stored names.
        actions = sorted(audit_actions(), key=audit_action_label)
        html = render_template("audit/index.html", actions=actions, **context)
    return vary_on_htmx(current_app.make_response(html))
