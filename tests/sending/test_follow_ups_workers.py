"""The review's lost follow-up, with real processes: a `worker.py` killed with -9 after the fake
Twilio accepted its messages, the signed status callbacks reaching gunicorn before the tick
looks, and every follow-up then existing exactly once and going out exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import parse_quiet_hours
from app.extensions import db
from app.jobs.sending import enqueue_sending
from app.models import (
    Broadcast,
    BroadcastStatus,
    Contact,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.outbound import create_outbound
from app.sending.recovery import recover_stale_claims, release_due
from app.webhooks.inbox import apply_pending_callbacks
from bench.common import kill_tree
from tests.fakes.twilio import FakeTwilio
from tests.support import (
    OUTPUT_DIR,
    ROOT,
    free_port,
    make_test_config,
    migrated_scratch_database,
    run_worker_py,
    start_worker_py,
    test_env,
    twilio_worker_settings,
)

pytestmark = pytest.mark.slow
DELAY = 600
PEOPLE = 5


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def scratch_db() -> Iterator[str]:
    with migrated_scratch_database("followups") as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    # Every send is accepted and then left hanging, so the worker can only die before it
    # hears the answer; the receipts go out to the message's StatusCallback meanwhile.
    with FakeTwilio(
        seed=5,
        rate_timeout=1.0,
        timeout_accepts=1.0,
        timeout_seconds=60,
        status_callbacks=True,
        callback_delay_ms=300,
    ) as server:
        yield server


@pytest.fixture
def web(scratch_db, fake) -> Iterator[tuple[str, dict[str, str]]]:
    """gunicorn on the scratch database; its public URL is what Twilio signs and calls back."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = test_env(
        DATABASE_URL=scratch_db,
        PUBLIC_BASE_URL=url,
        **twilio_worker_settings(fake, SEND_CONCURRENCY="8"),
    )
    OUTPUT_DIR.mkdir(exist_ok=True)
    log_path = OUTPUT_DIR / "follow-ups-web.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, 30, "gunicorn")
        yield url, env
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def live(scratch_db, web) -> Iterator:
    _, env = web
    config = {
        k: env[k]
        for k in (
            "TRANSPORT",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_FROM_NUMBER",
            "TWILIO_API_BASE_URL",
        )
    }
    app = create_app(
        make_test_config(
            database_url=scratch_db,
            QUIET_HOURS=parse_quiet_hours("off"),
            SEND_RATE_MPS=1000.0,
            **config,
        )
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def rows(step: Step) -> list[OutboundMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.step == step).order_by("id")
        )
    )


def test_a_killed_worker_whose_callbacks_arrive_first_loses_no_follow_up(live, web, fake):
    _, env = web
    broadcast = Broadcast(
        first_message="First",
        second_message="Follow-up",
        delay_seconds=DELAY,
        status=BroadcastStatus.SENDING,
    )
    contacts = [Contact(phone=f"+1313555{i:04d}") for i in range(PEOPLE)]
    db.session.add_all([broadcast, *contacts])
    db.session.flush()
    create_outbound(broadcast, [c.id for c in contacts], "First")
    db.session.commit()
    enqueue_sending(live)

    worker = start_worker_py(["worker"], env)
    try:
        wait_for(lambda: fake.stats()["accepted"] == PEOPLE, 60, "Twilio to accept every message")
    finally:
        kill_tree(worker, signal.SIGKILL)  # the worker and its work horse, awaiting answers
    assert {m.status for m in rows(Step.FIRST)} == {MessageStatus.SENDING}

    # sending, sent, delivered for each message, each signed over our public URL.
    wait_for(
        lambda: (
            fake.stats()["callbacks_sent"] == 3 * PEOPLE and not fake.stats()["callbacks_pending"]
        ),
        30,
        "the status callbacks",
    )
    assert fake.stats()["callback_responses_by_status"] == {"204": 3 * PEOPLE}
    # Accepted into the inbox; no worker is running, so the tick's sweep applies them.
    assert apply_pending_callbacks()["applied"] == 3 * PEOPLE
    firsts = rows(Step.FIRST)
    assert {m.status for m in firsts} == {MessageStatus.DELIVERED}
    assert {m.provider_sid for m in firsts} == {r["sid"] for r in fake.messages()}
    follow_ups = rows(Step.SECOND)
    assert sorted(m.contact_id for m in follow_ups) == sorted(c.id for c in contacts)
    by_contact = {m.contact_id: m for m in firsts}
    for follow_up in follow_ups:
        assert follow_up.status == MessageStatus.SCHEDULED
        gap = (follow_up.scheduled_for - by_contact[follow_up.contact_id].sent_at).total_seconds()
        assert gap == pytest.approx(DELAY, abs=1)

    # The tick, later: nothing is stale, and the follow-ups go out when due, once each.
    later = utcnow() + timedelta(seconds=live.config["STALE_CLAIM_SECONDS"] + 1)
    assert recover_stale_claims(live, later) == {
        "recovered_sent": 0,
        "recovered_requeued": 0,
        "needs_attention": 0,
    }
    assert release_due(utcnow() + timedelta(seconds=DELAY + 5))["released_scheduled"] == PEOPLE
    fake.configure(rate_timeout=0.0)
    enqueue_sending(live)
    done = run_worker_py(["worker", "--burst"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    # Accepted, and maybe already delivered: the fake's receipts keep coming to gunicorn.
    assert {m.status for m in rows(Step.SECOND)} <= {MessageStatus.SENT, MessageStatus.DELIVERED}
    assert len(rows(Step.SECOND)) == PEOPLE
    assert fake.stats()["accepted"] == 2 * PEOPLE and fake.stats()["duplicates"] == 0
