"""The every-minute tick: start a due broadcast and due campaigns, release due follow-ups and retries, sweep
pending status callbacks, recover stale claims, finish broadcasts and refresh their statistics, keep sending."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from app.broadcasts.services import run_due_broadcast
from app.campaigns.services import run_due_campaigns
from app.extensions import get_redis
from app.jobs.campaigns import enqueue_pending_labels
from app.jobs.runs import close_abandoned_runs, recorded_run
from app.jobs.sending import enqueue_sending
from app.sending.recovery import recover_stale_claims, release_due
from app.sends.stats import finish_sends, refresh_recent_stats
from app.webhooks.inbox import apply_pending_callbacks


def tick() -> dict[str, Any]:
    """One pass of the engine's periodic work. Safe to run twice or concurrently: every step is
    a conditional update, and enqueueing only tops the drain jobs up."""
    app = current_app._get_current_object()
    with recorded_run("tick") as run:
        run.counts.update(
            run_due_broadcast(
                zone=app.config["APP_TIMEZONE"],
                catch_up_minutes=app.config["BROADCAST_CATCHUP_MINUTES"],
            )
        )
        run.counts.update(
            run_due_campaigns(
                zone=app.config["APP_TIMEZONE"],
                catch_up_minutes=app.config["BROADCAST_CATCHUP_MINUTES"],
            )
        )
        # Campaign labels whose job was lost (Redis down at save time, a delayed retry lost).
        run.counts["label_jobs_enqueued"] = enqueue_pending_labels(app)
        run.counts.update(release_due())
        # Status callbacks the applier job has not taken (Redis or the workers were down),
        # before recovery would look their messages up at the provider.
        swept = apply_pending_callbacks()
        run.counts["callbacks_applied"] = swept["applied"] + swept["unchanged"]
        run.counts["callbacks_waiting"] = swept["busy"] + swept["waiting"]
        run.counts.update(recover_stale_claims(app))
        run.counts["sends_finished"] = finish_sends()
        run.counts["stats_refreshed"] = refresh_recent_stats()
        # Runs whose worker died without finishing (app.jobs.runs: the System page's rule too).
        run.counts["abandoned_runs"] = close_abandoned_runs(
            get_redis(app), ZoneInfo(app.config["APP_TIMEZONE"])
        )
        run.counts["send_jobs_enqueued"] = enqueue_sending(app)
    return {"run_id": run.run_id, **run.counts}
