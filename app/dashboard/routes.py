"""The overview page."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, render_template

from app.broadcasts.display import zone_label
from app.broadcasts.services import run_time
from app.dashboard.services import (
    active_schedule,
    audience_summary,
    last_broadcast,
    last_job_run,
    messages_since,
    upcoming_broadcast,
)
from app.models import utcnow
from app.sends.stats import display_stats
from app.system.services import health_report

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    upcoming = upcoming_broadcast()
    last = last_broadcast()
    return render_template(
        "dashboard/index.html",
        audience=audience_summary(),
        upcoming=upcoming,
        run_at=run_time(upcoming) if upcoming else None,
        zone_label=zone_label(current_app.config["APP_TIMEZONE"]),
        last=last,
        last_stats=(display_stats(last) or {}) if last else {},
        schedule=active_schedule(),
        last_tick=last_job_run("tick"),
        messages_24h=messages_since(utcnow() - timedelta(hours=24)),
        health=health_report(current_app),
    )
