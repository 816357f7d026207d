"""The dev default keeps working: migrate, seed and use the app on SQLite, as `make dev` does."""

from __future__ import annotations

import pytest

from app import create_app
from app.cli import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD
from tests.support import run_flask, test_env

pytestmark = pytest.mark.slow


def test_main_flow_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    env = test_env(DATABASE_URL=url)
    assert run_flask(["db", "upgrade"], env).returncode == 0
    seeded = run_flask(["seed-demo"], env)
    assert seeded.returncode == 0 and DEMO_ADMIN_PASSWORD in seeded.stdout
    assert run_flask(["seed-demo"], env).returncode == 0

    from tests.support import make_test_config

    app = create_app(make_test_config(database_url=url, WTF_CSRF_ENABLED=False))
    client = app.test_client()
    login = client.post(
        "/auth/login", data={"email": DEMO_ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD}
    )
    assert login.status_code == 302
    for path in (
        "/",
        "/system/",
        "/settings/",
        "/settings/users",
        "/audit/",
        "/broadcasts/",
        "/campaigns/",
    ):
        assert client.get(path).status_code == 200, path
    created = client.post(
        "/settings/users",
        data={"email": "ops@example.org", "role": "operator", "password": "long-password"},
    )
    assert created.status_code == 302
    assert b"ops@example.org" in client.get("/settings/users").data
    assert client.get("/healthz").json["database"]["ok"] is True

    # The demo's upcoming broadcast goes out now: recipients chosen and rows written on SQLite.
    assert client.get("/broadcasts/send-now").status_code == 200
    started = client.post("/broadcasts/send-now")
    assert started.status_code in (200, 302), started.get_data(as_text=True)[:500]
    import sqlalchemy as sa

    from app.extensions import db

    with app.app_context():
        queued = db.session.scalar(sa.text("SELECT count(*) FROM outbound_messages"))
        upcoming = db.session.scalar(
            sa.text("SELECT count(*) FROM broadcasts WHERE status = 'upcoming'")
        )
    assert queued > 0 and upcoming == 1

    # The demo's scheduled campaign starts in the tick's pass once due, on SQLite too.
    from datetime import timedelta

    from app.campaigns.services import next_campaign, run_due_campaigns

    with app.app_context():
        campaign = next_campaign()
        estimate = campaign.estimated_recipients
        counts = run_due_campaigns(
            zone=app.config["APP_TIMEZONE"],
            catch_up_minutes=60,
            now=campaign.run_at + timedelta(minutes=1),
        )
        assert counts["campaigns_started"] == [campaign.id]
        rows = db.session.scalar(
            sa.text("SELECT count(*) FROM outbound_messages WHERE campaign_id = :c"),
            {"c": campaign.id},
        )
    assert rows == estimate > 0
    page = client.get(f"/campaigns/{campaign.id}")
    assert page.status_code == 200 and b"Election day reminder" in page.data


def test_sqlite_enforces_foreign_keys(tmp_path):
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db
    from tests.support import make_test_config

    url = f"sqlite:///{tmp_path / 'fk.db'}"
    assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
    app = create_app(make_test_config(database_url=url))
    with app.app_context():
        with pytest.raises(IntegrityError):
            db.session.execute(
                sa.text(
                    "INSERT INTO broadcast_segments (broadcast_id, segment_id, ratio, is_filler,"
                    " position) VALUES (999, 999, 10, 0, 0)"
                )
            )


def test_sqlite_gives_back_utc_aware_timestamps(tmp_path):
    from datetime import UTC, datetime, timedelta, timezone

    from app.extensions import db
    from app.models import JobRun
    from tests.support import make_test_config

    url = f"sqlite:///{tmp_path / 'tz.db'}"
    assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
    app = create_app(make_test_config(database_url=url))
    detroit = timezone(timedelta(hours=-4))
    with app.app_context():
        run = JobRun(name="tick", started_at=datetime(2026, 7, 1, 8, 0, tzinfo=detroit))
        db.session.add(run)
        db.session.commit()
        db.session.expire_all()
        loaded = db.session.get(JobRun, run.id)
        assert loaded.started_at == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
        assert loaded.started_at.tzinfo == UTC


def test_the_engine_sends_with_the_simulator_on_sqlite(tmp_path):
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Broadcast, Contact, MessageStatus, OutboundMessage, Step
    from app.sending.engine import send_batch
    from app.sending.outbound import create_outbound
    from app.sending.recovery import recover_stale_claims, release_due
    from tests.support import make_test_config

    url = f"sqlite:///{tmp_path / 'engine.db'}"
    assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
    app = create_app(make_test_config(database_url=url, QUIET_HOURS=None))
    with app.app_context():
        broadcast = Broadcast(first_message="Hi", second_message="Again", delay_seconds=0)
        contacts = [Contact(phone=f"+1313555010{i}") for i in range(3)]
        db.session.add_all([broadcast, *contacts])
        db.session.flush()
        assert create_outbound(broadcast, [c.id for c in contacts], "Hi") == 3
        assert create_outbound(broadcast, [c.id for c in contacts], "Hi") == 0
        db.session.commit()
        assert send_batch(app, limit=2).claimed == 2
        assert send_batch(app).claimed == 1
        assert release_due()["released_scheduled"] == 3  # follow-ups with no delay
        assert send_batch(app).counts["accepted"] == 3
        assert recover_stale_claims(app)["recovered_sent"] == 0
        statuses = db.session.execute(sa.select(OutboundMessage.step, OutboundMessage.status)).all()
        assert (
            sorted(statuses)
            == [(Step.FIRST, MessageStatus.SENT)] * 3 + [(Step.SECOND, MessageStatus.SENT)] * 3
        )
