"""The overview page."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, render_template

from app.broadcasts.display import zone_label
from app.broadcasts.services import active_schedule, latest_broadcast, run_time, upcoming_broadcast
from app.campaigns.services import next_campaign
from app.dashboard.services import audience_summary, last_job_run, messages_sent_since
from app.inbound.services import possible_opt_out_count
from app.models import utcnow
from app.sends.stats import display_stats
from app.system.services import health_report, possible_opt_outs_context

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    upcoming = upcoming_broadcast()
    last = latest_broadcast()
    return render_template(
        "dashboard/index.html",
        audience=audience_summary(),
        upcoming=upcoming,
        run_at=run_time(upcoming) if upcoming else None,
        zone_label=zone_label(current_app.config["APP_TIMEZONE"]),
        last=last,
        last_stats=(display_stats(last) or {}) if last else {},
        schedule=active_schedule(),
        next_campaign=next_campaign(),
        last_tick=last_job_run("tick"),
        messages_24h=messages_sent_since(utcnow() - timedelta(hours=24)),
        health=health_report(current_app),
        opt_outs_total=possible_opt_out_count(),
        **possible_opt_outs_context("dashboard"),
    )
