"""/healthz: JSON with database and Redis reachability; 200 when both answer, 503 otherwise."""

from __future__ import annotations

from datetime import timedelta

from app import create_app
from tests.support import HX, make_test_config


def test_healthz_is_ok_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "detail": "ok"}
    assert body["redis"] == {"ok": True, "detail": "ok"}
    # A database that never ran a tick (a fresh install) is not stale.
    assert body["tick"] == {
        "ok": True,
        "detail": "never ran",
        "last_run_at": None,
        "age_seconds": None,
    }
    assert body["workers"] == {
        "ok": False,
        "detail": "no worker is running",
        "alive": 0,
        "busy": 0,
        "registered": 0,
    }
    assert body["queues"] == {"sending": 0, "default": 0, "maintenance": 0}
    assert response.headers["Cache-Control"] == "no-store"


def _tick_run(minutes_ago: float, outcome=None):
    from app.extensions import db
    from app.models import JobOutcome, JobRun, utcnow

    at = utcnow() - timedelta(minutes=minutes_ago)
    db.session.add(
        JobRun(name="tick", outcome=outcome or JobOutcome.SUCCESS, started_at=at, finished_at=at)
    )
    db.session.commit()


def test_healthz_reports_the_age_of_the_last_tick_and_queue_depths(client, app):
    from app.jobs import QUEUE_SENDING, get_queue

    _tick_run(7)
    _tick_run(2)
    get_queue(app, QUEUE_SENDING).enqueue("app.jobs.sending.send_queued")
    body = client.get("/healthz").json
    assert body["status"] == "ok" and body["tick"]["ok"] is True
    assert 100 <= body["tick"]["age_seconds"] <= 200
    assert body["queues"]["sending"] == 1


def test_healthz_is_503_when_the_tick_has_not_run_for_5_minutes(client):
    from app.models import JobOutcome

    _tick_run(6)
    _tick_run(1, JobOutcome.FAILED)  # a failing tick is no sign of life
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable"
    assert body["tick"]["ok"] is False and body["tick"]["detail"] == "no tick for 6 minutes"
    assert body["database"]["ok"] is True and body["redis"]["ok"] is True


def test_healthz_counts_a_worker_with_a_fresh_heartbeat_as_alive(client, app, redis_conn):
    from rq import Worker

    worker = Worker(["sending"], connection=redis_conn, name="health-test-worker")
    worker.register_birth()
    worker.heartbeat()
    try:
        body = client.get("/healthz").json
    finally:
        worker.register_death()
    assert body["workers"]["ok"] is True
    assert body["workers"]["alive"] == 1 and body["workers"]["registered"] == 1


def test_healthz_is_503_when_redis_does_not_answer():
    app = create_app(make_test_config(REDIS_URL="redis://127.0.0.1:1/0"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["database"]["ok"] is True
    assert response.json["redis"] == {"ok": False, "detail": "ConnectionError"}


def test_healthz_is_503_when_the_database_does_not_answer():
    app = create_app(
        make_test_config(
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/nothing",
            SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}},
        )
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"]["ok"] is False
    assert response.json["redis"]["ok"] is True


def test_system_page_shows_health_queues_workers_and_periodic_jobs(viewer_client):
    page = viewer_client.get("/system/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for region in ("system-health", "system-queues", "system-workers", "system-periodic"):
        assert f'id="{region}"' in html
    assert "No worker is running" in html
    assert "* * * * *" in html  # the tick's schedule


def test_system_page_still_renders_when_redis_is_down(make_user, make_app):
    from app.models import Role
    from tests.conftest import sign_in

    client = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    user = make_user(Role.VIEWER)
    # Rate limiting falls back to memory when its Redis is down, so sign-in still works.
    assert sign_in(client, user).status_code == 302
    page = client.get("/system/")
    assert page.status_code == 200
    assert b"Redis does not answer" in page.data


def test_job_runs_page_and_partial(viewer_client):
    from app.extensions import db
    from app.models import JobOutcome, JobRun

    db.session.add_all(
        [JobRun(name="tick", outcome=JobOutcome.SUCCESS, counts={"work": i}) for i in range(25)]
    )
    db.session.commit()
    page = viewer_client.get("/system/").get_data(as_text=True)
    assert "<html" in page and 'id="system-job-runs"' in page and "Older runs" in page
    partial = viewer_client.get("/system/?page=2", headers=HX)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in html
    assert html.count("<tr>") == 1 + 5  # header row + the 5 oldest of 25 runs
    assert viewer_client.get("/system/?page=99999999999999999999").status_code == 200
