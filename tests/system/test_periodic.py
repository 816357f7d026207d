"""The System page's periodic jobs: schedules in words and local time (across daylight saving
changes), last and next runs, live progress while a run is queued or running, and Run now
(operators and admins; enqueued on the job's queue, refused while queued or running, or when
Redis is down)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from rq import Queue, SimpleWorker, Worker
from rq_scheduler import Scheduler

from app.extensions import db
from app.jobs import QUEUE_DEFAULT, QUEUE_MAINTENANCE
from app.jobs.schedule import PERIODIC_JOBS, register_periodic_jobs
from app.models import AuditLog, JobOutcome, JobRun, Role, utcnow
from app.system.periodic import (
    counts_in_words,
    duration_in_words,
    error_summary,
    next_run,
    relative,
    schedule_in_words,
)
from tests.conftest import sign_in
from tests.support import HX

DETROIT = ZoneInfo("America/Detroit")
RUN_URL = "/system/periodic/retention/run"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "words", "detail"),
    [
        # Summer (EDT, UTC-4): 03:43 UTC is 11:43 PM the evening before.
        ("2026-07-01T12:00", "Every day at 11:43 PM (America/Detroit)", "10:43 PM in standard"),
        # Winter (EST, UTC-5).
        ("2026-12-01T12:00", "Every day at 10:43 PM (America/Detroit)", "11:43 PM in daylight"),
        # The night daylight saving time ends (Nov 1, 2026 at 2 AM): the next run is still EDT...
        ("2026-10-31T12:00", "Every day at 11:43 PM (America/Detroit)", "10:43 PM in standard"),
        # ...and the one after it EST.
        ("2026-11-01T12:00", "Every day at 10:43 PM (America/Detroit)", "11:43 PM in daylight"),
        # It starts on Mar 8, 2026: the next run before it is EST, the one after EDT.
        ("2026-03-07T12:00", "Every day at 10:43 PM (America/Detroit)", "11:43 PM in daylight"),
        ("2026-03-08T12:00", "Every day at 11:43 PM (America/Detroit)", "10:43 PM in standard"),
    ],
)
def test_a_daily_utc_schedule_reads_in_local_time_at_its_next_run(now, words, detail):
    said, more = schedule_in_words("43 3 * * *", DETROIT, at(now))
    assert said == words
    assert more.startswith("03:43 UTC; ") and detail in more


def test_other_schedules_in_words():
    now = at("2026-12-01T14:00")
    assert schedule_in_words("* * * * *", DETROIT, now) == ("Every minute", "")
    assert schedule_in_words("*/5 * * * *", DETROIT, now) == ("Every 5 minutes", "")
    assert schedule_in_words("17 * * * *", DETROIT, now) == ("Every hour at 17 minutes past", "")
    # Monday 02:30 UTC is still Sunday evening in Detroit.
    assert schedule_in_words("30 2 * * 1", DETROIT, now)[0] == (
        "Every Sunday at 9:30 PM (America/Detroit)"
    )
    # A zone without daylight saving time says nothing about seasons; its half hour shows.
    assert schedule_in_words("43 3 * * *", ZoneInfo("Asia/Kolkata"), now) == (
        "Every day at 9:13 AM (Asia/Kolkata)",
        "03:43 UTC",
    )
    assert schedule_in_words("0 0 1 * *", DETROIT, now)[0] == (
        "On the cron schedule 0 0 1 * * (UTC)"
    )


def test_next_run_relative_time_durations_counts_and_errors_in_words():
    now = at("2026-12-01T14:00:30")
    assert next_run("43 3 * * *", now) == at("2026-12-02T03:43")
    assert next_run("* * * * *", now) == at("2026-12-01T14:01")
    assert relative(at("2026-12-02T03:43"), now) == "in 13 hours"
    assert relative(now + timedelta(seconds=20), now) == "in less than a minute"
    assert relative(now - timedelta(minutes=1, seconds=5), now) == "1 minute ago"
    assert relative(now - timedelta(days=3), now) == "3 days ago"
    assert duration_in_words(0.42) == "0.4 s"
    assert duration_in_words(125) == "2 min 5 s"
    assert duration_in_words(3725) == "1 h 2 min"
    assert counts_in_words({"checked": 1200, "updated": 3, "errors": 0}) == (
        "1,200 messages checked · 3 updated"
    )
    assert counts_in_words({"found": 1, "excluded": 1}) == "1 number found · 1 contact excluded"
    assert counts_in_words({"checked": 0, "updated": 0}) == "nothing to do"
    # The total to check goes with the checked count, and is no count of its own once reached.
    assert counts_in_words({"checked": 1, "to_check": 2}) == "1 of 2 messages checked"
    assert counts_in_words({"checked": 600, "updated": 600, "to_check": 600}) == (
        "600 messages checked · 600 updated"
    )
    assert counts_in_words({"checked": 0, "to_check": 0}) == "nothing to do"
    assert counts_in_words({"checked": 0, "to_check": 5}) == "0 of 5 messages checked"
    assert counts_in_words({"skipped": "transport is simulator"}) == ""
    # A skipped run's zeros are not "nothing to do": its reason says why it did nothing.
    assert counts_in_words({"checked": 0, "skipped": "transport is simulator"}) == ""
    traceback = "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'sid'\n\n"
    assert error_summary(traceback) == "KeyError: 'sid'"
    # A database error's last lines are its statement and a link: the summary names the error.
    database = (
        "Traceback (most recent call last):\n"
        '  File "app/jobs/maintenance.py", line 258, in exclude_undeliverable\n'
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) no such function: "
        "bool_and\n[SQL: SELECT anon_1.contact_id \nFROM (SELECT outbound_messages.contact_id\n"
        "HAVING count(*) = ? AND bool_and(anon_1.status IN (?, ?))]\n"
        "[SQL parameters hidden due to hide_parameters=True]\n"
        "(Background on this error at: https://sqlalche.me/e/20/e3q8)\n"
    )
    assert error_summary(database) == (
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) no such function: bool_and"
    )
    assert error_summary("Killed\n") == "Killed"
    assert error_summary(None) == ""


def periodic_html(client) -> str:
    page = client.get("/system/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    start = html.index('id="system-periodic"')
    return html[start : html.index("</article>", start)]


def test_every_periodic_job_is_listed_with_its_schedule_and_next_run(viewer_client):
    html = periodic_html(viewer_client)
    for job in PERIODIC_JOBS:
        assert f'id="system-periodic-{job.id}"' in html
    assert "Every minute" in html and "(America/Detroit)" in html
    assert "Never run yet" in html
    # No scheduler runs against this Redis: the page says the jobs will not run by themselves.
    assert "The scheduler is not running, so these jobs do not run by themselves" in html
    # Nothing is queued or running: no row polls.
    assert 'hx-trigger="every 2s"' not in html


def test_a_running_scheduler_that_holds_every_job_needs_no_warning(viewer_client, redis_conn):
    scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=redis_conn)
    scheduler.register_birth()  # what `python worker.py scheduler` does first
    register_periodic_jobs(scheduler)
    html = periodic_html(viewer_client)
    assert "The scheduler is not running" not in html
    assert "The scheduler does not hold this job" not in html

    # A job it lost (a release added it and the scheduler was not restarted) is pointed out.
    scheduler.cancel("periodic-retention")
    html = periodic_html(viewer_client)
    row = html[html.index('id="system-periodic-retention"') :]
    assert "The scheduler does not hold this job" in row[: row.index("</li>")]
    assert html.count("The scheduler does not hold this job") == 1

    scheduler.register_death()
    assert "The scheduler is not running" in periodic_html(viewer_client)


def test_a_viewer_sees_no_run_now_button_and_is_refused_the_post(viewer_client, redis_conn):
    html = periodic_html(viewer_client)
    assert "Run now" not in html and 'id="system-periodic-retention-run"' not in html
    response = viewer_client.post(RUN_URL, headers=HX)
    assert response.status_code == 403
    assert "operator" in response.get_data(as_text=True)
    assert Queue(QUEUE_MAINTENANCE, connection=redis_conn).count == 0


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_operators_and_admins_queue_a_run_on_the_jobs_queue(client, make_user, redis_conn, role):
    sign_in(client, make_user(role))
    assert 'id="system-periodic-retention-run"' in periodic_html(client)
    response = client.post(RUN_URL, headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # The row comes back queued and polling, with the flash beside it.
    assert 'id="system-periodic-retention"' in html and 'hx-trigger="every 2s"' in html
    assert "Waiting for a worker on the maintenance queue" in html
    assert "retention is queued on the maintenance queue" in html
    assert "No worker is taking jobs from the maintenance queue" in html
    queue = Queue(QUEUE_MAINTENANCE, connection=redis_conn)
    assert queue.job_ids == ["run-now-retention"]
    job = queue.fetch_job("run-now-retention")
    assert job.func_name == "app.jobs.maintenance.apply_retention" and job.timeout == 3600
    # Nothing ran in the web process.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0
    entry = db.session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "periodic_job.run_now")
    ).one()
    assert (entry.object_type, entry.object_id) == ("periodic_job", "retention")
    assert entry.summary == "Queued a run of retention on the maintenance queue"


def test_a_second_run_now_is_refused_while_the_first_is_queued(operator_client, redis_conn):
    assert operator_client.post(RUN_URL, headers=HX).status_code == 200
    again = operator_client.post(RUN_URL, headers=HX)
    assert again.status_code == 409
    assert again.headers["HX-Retarget"] == "#flash"
    message = again.get_data(as_text=True)
    assert "retention is already queued since" in message and "it was not queued again" in message
    assert Queue(QUEUE_MAINTENANCE, connection=redis_conn).count == 1
    # The page, meanwhile, shows the row queued, disabled and polling.
    html = periodic_html(operator_client)
    row = html[html.index('id="system-periodic-retention"') :]
    row = row[: row.index("</li>")]
    assert "Queued…" in row and "disabled" in row and 'hx-trigger="every 2s"' in row


def test_run_now_is_refused_while_the_scheduled_run_is_queued(operator_client, redis_conn):
    register_periodic_jobs(Scheduler(queue_name=QUEUE_DEFAULT, connection=redis_conn))
    scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=redis_conn)
    scheduled = next(j for j in scheduler.get_jobs() if j.id == "periodic-retention")
    scheduler.enqueue_job(scheduled)  # its time came: the scheduler put it on the queue
    response = operator_client.post(RUN_URL, headers=HX)
    assert response.status_code == 409 and "already queued since" in response.get_data(True)


def test_run_now_is_refused_while_a_run_is_running(operator_client, redis_conn):
    db.session.add(
        JobRun(
            name="retention",
            outcome=JobOutcome.RUNNING,
            started_at=utcnow() - timedelta(minutes=3),
            counts={"webhook_events_deleted": 5000},
        )
    )
    db.session.commit()
    response = operator_client.post(RUN_URL, headers=HX)
    assert response.status_code == 409
    assert "retention is already running since" in response.get_data(as_text=True)
    assert Queue(QUEUE_MAINTENANCE, connection=redis_conn).count == 0


def test_a_run_abandoned_hours_ago_does_not_block_run_now(operator_client, redis_conn):
    db.session.add(
        JobRun(
            name="retention", outcome=JobOutcome.RUNNING, started_at=utcnow() - timedelta(hours=3)
        )
    )
    db.session.commit()
    assert operator_client.post(RUN_URL, headers=HX).status_code == 200


def test_run_now_without_htmx_redirects_to_the_row_with_a_flash(operator_client):
    response = operator_client.post(RUN_URL)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/system/#system-periodic-retention")
    page = operator_client.get("/system/").get_data(as_text=True)
    assert "retention is queued on the maintenance queue" in page


def test_run_now_says_redis_is_down_instead_of_failing(make_user, make_app):
    client = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    assert sign_in(client, make_user(Role.OPERATOR)).status_code == 302
    assert client.get("/system/").status_code == 200
    response = client.post(RUN_URL, headers=HX)
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "Redis does not answer, so retention cannot be queued. Nothing was started" in html


def test_unknown_jobs_are_404(operator_client):
    assert operator_client.post("/system/periodic/nope/run", headers=HX).status_code == 404
    assert operator_client.get("/system/periodic/nope", headers=HX).status_code == 404


def test_a_running_job_shows_its_live_counts_and_polls_until_done(viewer_client):
    run = JobRun(
        name="status reconciliation",
        outcome=JobOutcome.RUNNING,
        started_at=utcnow() - timedelta(seconds=30),
        counts={"checked": 1500, "updated": 12, "to_check": 6000},
    )
    db.session.add(run)
    db.session.commit()
    url = "/system/periodic/reconcile-statuses?active=1"
    partial = viewer_client.get(url, headers=HX)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in html
    assert '<li id="system-periodic-reconcile-statuses"' in html
    assert 'hx-trigger="every 2s"' in html and "running" in html
    assert "1,500 of 6,000 messages checked · 12 updated" in html
    assert 'value="1500" max="6000"' in html  # a real progress bar
    assert "HX-Trigger" not in partial.headers

    run.outcome = JobOutcome.SUCCESS
    run.finished_at = run.started_at + timedelta(seconds=75)
    run.counts = {"checked": 4000, "updated": 40}
    db.session.commit()
    done = viewer_client.get(url, headers=HX)
    html = done.get_data(as_text=True)
    assert 'hx-trigger="every 2s"' not in html  # polling stops
    assert "4,000 messages checked · 40 updated" in html and "took 1 min 15 s" in html
    assert "<progress" not in html
    assert "badge--success" in html
    # The run just ended: the recent runs list refreshes itself.
    assert done.headers["HX-Trigger"] == "system-job-runs-changed"
    assert "HX-Request" in done.headers["Vary"]
    # Without htmx the row's URL is the System page at that row.
    full = viewer_client.get("/system/periodic/reconcile-statuses")
    assert full.status_code == 302 and full.headers["Location"].endswith(
        "#system-periodic-reconcile-statuses"
    )


def test_a_failed_run_shows_the_last_line_of_its_error_with_the_rest_behind_a_disclosure(
    viewer_client,
):
    error = (
        "Traceback (most recent call last):\n"
        '  File "/app/jobs/maintenance.py", line 70, in apply_retention\n'
        "sqlalchemy.exc.OperationalError: could not obtain lock on relation\n"
    )
    started = utcnow() - timedelta(hours=2)
    db.session.add(
        JobRun(
            name="retention",
            outcome=JobOutcome.FAILED,
            started_at=started,
            finished_at=started + timedelta(seconds=2),
            counts={"webhook_events_deleted": 10000},
            error=error,
        )
    )
    db.session.commit()
    html = periodic_html(viewer_client)
    row = html[html.index('id="system-periodic-retention"') :]
    row = row[: row.index("</li>")]
    assert "badge--failed" in row and "2 hours ago" in row and "took 2.0 s" in row
    assert "10,000 webhook log entries deleted" in row
    assert (
        "<summary>sqlalchemy.exc.OperationalError: could not obtain lock on relation</summary>"
        in row
    )
    assert "line 70, in apply_retention" in row  # the whole traceback, behind the summary


def test_a_skipped_run_says_why(viewer_client):
    db.session.add(
        JobRun(
            name="status reconciliation",
            outcome=JobOutcome.SKIPPED,
            finished_at=utcnow(),
            counts={"checked": 0, "skipped": "transport is simulator", "list_error": "HTTP 500"},
        )
    )
    db.session.commit()
    html = periodic_html(viewer_client)
    assert "Skipped: transport is simulator" in html and "list error: HTTP 500" in html


def test_run_now_then_a_worker_runs_it_and_the_row_shows_the_result(
    app, operator_client, redis_conn
):
    assert operator_client.post(RUN_URL, headers=HX).status_code == 200
    # A worker in this process, on this test's database connection.
    SimpleWorker([QUEUE_MAINTENANCE], connection=redis_conn).work(burst=True)
    run = db.session.scalars(sa.select(JobRun).where(JobRun.name == "retention")).one()
    assert run.outcome == JobOutcome.SUCCESS
    html = operator_client.get("/system/periodic/retention?active=1", headers=HX).get_data(True)
    assert "badge--success" in html and "nothing to do" in html
    assert 'hx-trigger="every 2s"' not in html and "Run now" in html
    # Done, it may be queued again.
    assert operator_client.post(RUN_URL, headers=HX).status_code == 200


def test_recent_job_runs_read_in_words(viewer_client):
    db.session.add(
        JobRun(
            name="undeliverable numbers",
            outcome=JobOutcome.FAILED,
            finished_at=utcnow(),
            counts={"found": 3, "excluded": 0},
            error="Traceback (most recent call last):\nRuntimeError: the database went away\n",
        )
    )
    db.session.commit()
    html = viewer_client.get("/system/").get_data(as_text=True)
    runs = html[html.index('id="system-job-runs"') :]
    assert "3 numbers found" in runs and "found: 3" not in runs
    assert "<summary>RuntimeError: the database went away</summary>" in runs


def test_a_started_run_whose_worker_died_long_ago_does_not_block_run_now(
    operator_client, redis_conn
):
    from rq.job import JobStatus

    queue = Queue(QUEUE_MAINTENANCE, connection=redis_conn)
    job = queue.enqueue("app.jobs.maintenance.apply_retention", job_id="run-now-retention")
    queue.remove(job)  # a worker took it...
    job.started_at = utcnow() - timedelta(minutes=5)
    job.set_status(JobStatus.STARTED)
    job.save()
    # ...and is still on it: refused.
    response = operator_client.post(RUN_URL, headers=HX)
    assert response.status_code == 409 and "already running since" in response.get_data(True)
    # Far past the job's timeout, that worker died without a word: a new run may go.
    job.started_at = utcnow() - timedelta(hours=2)
    job.save()
    assert operator_client.post(RUN_URL, headers=HX).status_code == 200


def _retention_run(**who) -> JobRun:
    run = JobRun(
        name="retention",
        outcome=JobOutcome.RUNNING,
        started_at=utcnow() - timedelta(minutes=3),
        counts={"webhook_events_deleted": 5000},
        **who,
    )
    db.session.add(run)
    db.session.commit()
    return run


def _started_rq_job(redis_conn, worker_name: str):
    from rq.job import JobStatus

    queue = Queue(QUEUE_MAINTENANCE, connection=redis_conn)
    job = queue.enqueue("app.jobs.maintenance.apply_retention", job_id="run-now-retention")
    queue.remove(job)  # a worker took it
    job.started_at = utcnow() - timedelta(minutes=3)
    job.worker_name = worker_name
    job.set_status(JobStatus.STARTED)
    job.save()
    return job


def _gone_process() -> str:
    """A process description (app.jobs.runs.this_process) of a process that has exited."""
    import subprocess
    import sys

    from app.jobs.runs import this_process

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    namespace = "/".join((this_process() or "").split("/")[:2])
    return f"{namespace}/{child.pid}/1"


def test_a_run_on_a_live_worker_refuses_run_now_until_that_worker_stops(
    operator_client, redis_conn
):
    worker = Worker([QUEUE_MAINTENANCE], connection=redis_conn, name="live-worker")
    worker.register_birth()
    _started_rq_job(redis_conn, "live-worker")
    run = _retention_run(rq_job_id="run-now-retention", worker_name="live-worker")
    response = operator_client.post(RUN_URL, headers=HX)
    assert response.status_code == 409 and "already running since" in response.get_data(True)
    db.session.refresh(run)
    assert run.outcome == JobOutcome.RUNNING
    # The worker stopped (here: it said so; a SIGKILLed one's key expires) without finishing.
    worker.register_death()
    # The page says so at once (a GET writes nothing: the row is closed by Run now or the tick).
    html = periodic_html(operator_client)
    row = html[html.index('id="system-periodic-retention"') :]
    row = row[: row.index("</li>")]
    assert "no longer reports to Redis" in row and "Run now</button>" in row
    assert "5,000 webhook log entries deleted" in row
    db.session.refresh(run)
    assert run.outcome == JobOutcome.RUNNING
    assert operator_client.post(RUN_URL, headers=HX).status_code == 200
    db.session.refresh(run)
    assert run.outcome == JobOutcome.FAILED and run.finished_at is not None
    assert run.error.startswith(
        "Abandoned: its worker stopped without finishing "
        "(its RQ worker live-worker no longer reports to Redis); it started at "
    )
    assert "Nothing more will be recorded for this run." in run.error
    html = periodic_html(operator_client)
    row = html[html.index('id="system-periodic-retention"') :]
    assert "badge--failed" in row[: row.index("</li>")]
    assert "Abandoned: its worker stopped without finishing" in row[: row.index("</li>")]


def test_a_run_whose_rq_job_is_no_longer_started_is_closed(operator_client, redis_conn):
    worker = Worker([QUEUE_MAINTENANCE], connection=redis_conn, name="live-worker")
    worker.register_birth()  # the worker lives on (its work horse was killed, out of memory)
    job = _started_rq_job(redis_conn, "live-worker")
    run = _retention_run(rq_job_id="run-now-retention", worker_name="live-worker")
    job.set_status("failed")
    assert operator_client.post(RUN_URL, headers=HX).status_code == 200
    db.session.refresh(run)
    assert run.outcome == JobOutcome.FAILED
    assert "(its RQ job run-now-retention is failed)" in run.error


def test_with_redis_down_only_runs_whose_process_is_certainly_gone_are_closed(make_user, make_app):
    from app.extensions import get_redis
    from app.jobs.runs import close_abandoned_runs

    # Its worker cannot be asked: left running, and Run now says Redis is down.
    unknown = _retention_run(rq_job_id="run-now-retention", worker_name="gone-worker")
    dead = JobRun(
        name="status reconciliation",
        outcome=JobOutcome.RUNNING,
        started_at=utcnow() - timedelta(minutes=1),
        process=_gone_process(),
    )
    db.session.add(dead)
    db.session.commit()
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    client = down.test_client()
    assert sign_in(client, make_user(Role.OPERATOR)).status_code == 302
    page = client.get("/system/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = html[html.index('id="system-periodic-reconcile-statuses"') :]
    row = row[: row.index("</li>")]
    assert "Abandoned: its worker stopped without finishing (the process that ran it" in row
    row = html[html.index('id="system-periodic-retention"') :]
    assert "Running…" in row[: row.index("</li>")]  # cannot be told: still running
    assert client.post(RUN_URL, headers=HX).status_code == 503
    db.session.refresh(unknown)
    db.session.refresh(dead)
    assert unknown.outcome == JobOutcome.RUNNING and dead.outcome == JobOutcome.RUNNING
    # The tick's pass: the process was on this machine and is gone, which needs no Redis.
    with down.app_context():
        assert close_abandoned_runs(get_redis(down), DETROIT) == 1
    db.session.refresh(unknown)
    db.session.refresh(dead)
    assert unknown.outcome == JobOutcome.RUNNING and unknown.error is None
    assert dead.outcome == JobOutcome.FAILED
    assert "(the process that ran it (PID " in dead.error and ") is gone)" in dead.error


def test_the_tick_closes_abandoned_runs_by_the_same_rule(app, redis_conn):
    from app.jobs.runs import close_abandoned_runs

    elsewhere = _retention_run(process="another-machine/1/2/3", worker_name="gone-worker")
    assert close_abandoned_runs(None, DETROIT) == 0  # without Redis: cannot be told
    assert close_abandoned_runs(redis_conn, DETROIT) == 1  # its worker is not in Redis
    assert close_abandoned_runs(redis_conn, DETROIT) == 0  # once
    db.session.refresh(elsewhere)
    assert elsewhere.outcome == JobOutcome.FAILED and "gone-worker" in elsewhere.error
    old = JobRun(name="tick", outcome=JobOutcome.RUNNING, started_at=utcnow() - timedelta(hours=3))
    db.session.add(old)
    db.session.commit()
    assert close_abandoned_runs(None, DETROIT) == 1
    db.session.refresh(old)
    assert "running for more than 2 hours" in old.error


def test_a_process_is_gone_when_it_exited_or_its_pid_is_another_process(app):
    from app.jobs.runs import process_alive, this_process

    me = this_process()
    assert me is not None and process_alive(me) is True
    assert process_alive(_gone_process()) is False
    namespace, pid = "/".join(me.split("/")[:2]), me.split("/")[2]
    assert process_alive(f"{namespace}/{pid}/1") is False  # the same PID, started at another time
    assert process_alive(f"another-machine/1/{pid}/1") is None  # cannot be told from here
    assert process_alive(None) is None and process_alive("garbage") is None


def test_a_live_process_keeps_its_run_open_whatever_redis_says(app, redis_conn):
    from app.jobs.runs import close_abandoned_runs, this_process

    # A work horse whose worker alone was SIGKILLed goes on with its job.
    run = _retention_run(process=this_process(), worker_name="gone-worker")
    assert close_abandoned_runs(redis_conn, DETROIT) == 0
    db.session.refresh(run)
    assert run.outcome == JobOutcome.RUNNING
