"""Replies racing the follow-up, with real `worker.py` processes on a committed database and the
fake Twilio server: a follow-up is never sent to someone whose reply arrived before its claim."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.extensions import db
from app.jobs.sending import enqueue_sending
from app.models import (
    Broadcast,
    BroadcastStatus,
    Contact,
    InboundMessage,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sending.outbound import create_outbound
from app.sending.recovery import release_due
from tests.fakes.twilio import FakeTwilio
from tests.support import (
    ROOT,
    make_test_config,
    migrated_scratch_database,
    run_worker_py,
    test_env,
    twilio_worker_settings,
)
from tests.webhooks.signing import inbound_params, post_twilio, twilio_signature

pytestmark = pytest.mark.slow
FROM = "+13135559999"
PUBLIC = "https://broadcaster.example.org"
INBOUND = "/webhooks/twilio/inbound"


@pytest.fixture(scope="module")
def race_db() -> Iterator[str]:
    with migrated_scratch_database("inbound_race") as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=11) as server:
        yield server


@pytest.fixture
def settings(fake) -> dict[str, str]:
    return twilio_worker_settings(fake, TWILIO_FROM_NUMBER=FROM, PUBLIC_BASE_URL=PUBLIC)


@pytest.fixture
def live(race_db, settings) -> Iterator[Flask]:
    config = dict(settings, QUIET_HOURS=None, SEND_RATE_MPS=1000.0)
    app = create_app(make_test_config(database_url=race_db, **config))
    with app.app_context():
        db.session.execute(sa.text("TRUNCATE contacts, broadcasts, inbound_messages CASCADE"))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def worker(race_db: str, settings: dict[str, str], **extra: str) -> dict[str, str]:
    return test_env(DATABASE_URL=race_db, **{**settings, **extra})


def phones(n: int) -> list[str]:
    return [f"+1313555{2000 + i:04d}" for i in range(n)]


def first_messages_sent(app: Flask, race_db: str, settings, numbers: list[str]) -> None:
    """A broadcast's first messages sent by a real worker; follow-ups then made due and queued,
    with their drain jobs already waiting in Redis."""
    broadcast = Broadcast(
        first_message="First",
        second_message="Follow-up",
        delay_seconds=600,
        status=BroadcastStatus.SENDING,
    )
    db.session.add(broadcast)
    contacts = [Contact(phone=phone) for phone in numbers]
    db.session.add_all(contacts)
    db.session.flush()
    create_outbound(broadcast, [c.id for c in contacts], "First")
    db.session.commit()
    enqueue_sending(app)
    done = run_worker_py(["worker", "--burst"], worker(race_db, settings))
    assert done.returncode == 0, done.stderr[-3000:]
    db.session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.step == Step.SECOND)
        .values(scheduled_for=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert release_due()["released_scheduled"] == len(numbers)
    assert enqueue_sending(app) >= 1


def reply(client, phone: str, n: int) -> None:
    params = inbound_params(f"SMreply{n:06d}", phone, "Thanks, got it")
    signature = twilio_signature(
        PUBLIC + INBOUND, params, token=client.application.config["TWILIO_AUTH_TOKEN"]
    )
    assert post_twilio(client, INBOUND, params, signature=signature).status_code == 200


def follow_ups() -> dict[str, OutboundMessage]:
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(Contact.phone, OutboundMessage)
        .join(OutboundMessage, OutboundMessage.contact_id == Contact.id)
        .where(OutboundMessage.step == Step.SECOND)
    ).all()
    return {phone: message for phone, message in rows}


def test_a_reply_while_the_follow_up_job_is_queued_means_it_is_never_sent(
    live, fake, race_db, settings
):
    numbers = phones(20)
    first_messages_sent(live, race_db, settings, numbers)
    client = live.test_client()
    repliers = numbers[::2]
    for n, phone in enumerate(repliers):
        reply(client, phone, n)
    done = run_worker_py(["worker", "--burst"], worker(race_db, settings))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = follow_ups()
    for phone in numbers:
        if phone in repliers:
            assert rows[phone].status == MessageStatus.CANCELLED, phone
            assert rows[phone].cancel_reason == "replied"
        else:
            assert rows[phone].status == MessageStatus.SENT, phone
    follow_up_recipients = {m["to"] for m in fake.messages() if m["body"] == "Follow-up"}
    assert follow_up_recipients == set(numbers) - set(repliers)
    assert fake.stats()["duplicates"] == 0


def test_replies_racing_a_running_worker_never_get_a_follow_up_claimed_after_them(
    live, fake, race_db, settings
):
    numbers = phones(60)
    first_messages_sent(live, race_db, settings, numbers)
    fake.configure(latency_ms=40)
    env = worker(race_db, settings, SEND_RATE_MPS="30", SEND_CONCURRENCY="2")
    client = live.test_client()
    repliers = numbers[1::2]

    def send_replies() -> None:
        for n, phone in enumerate(repliers):
            with live.app_context():
                reply(client, phone, 1000 + n)
            time.sleep(0.02)

    process = subprocess.Popen(
        [sys.executable, "worker.py", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    thread = threading.Thread(target=send_replies)
    thread.start()
    thread.join(timeout=60)
    assert process.wait(timeout=120) == 0, process.stderr.read()[-3000:]
    rows = follow_ups()
    stored = {
        phone: at
        for phone, at in db.session.execute(
            sa.select(InboundMessage.phone, InboundMessage.received_at)
        )
    }
    assert set(stored) == set(repliers)
    cancelled = sent = 0
    for phone in repliers:
        message = rows[phone]
        if message.status == MessageStatus.CANCELLED:
            assert message.cancel_reason == "replied"
            cancelled += 1
        else:
            # Only a follow-up claimed before the reply was stored may have gone out.
            assert message.claimed_at is not None and message.claimed_at < stored[phone], phone
            sent += 1
    assert cancelled > 0, "the race should leave some follow-ups to cancel"
    for phone in set(numbers) - set(repliers):
        assert rows[phone].status == MessageStatus.SENT
    bodies = [m for m in fake.messages() if m["body"] == "Follow-up"]
    assert len(bodies) == len(numbers) - cancelled and fake.stats()["duplicates"] == 0


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_reply_accepted_while_its_claimed_follow_up_waits_for_its_turn_cancels_it(
    live, fake, race_db, settings
):
    numbers = phones(12)
    first_messages_sent(live, race_db, settings, numbers)
    # One call at a time, each held by the fake while the replies come in: the follow-ups are
    # claimed and screened before any reply exists, and the repliers' calls (the last six, in
    # claim order) come up only after every reply was answered 200.
    fake.configure(latency_ms=1500)
    before = fake.stats()["requests"]
    process = subprocess.Popen(
        [sys.executable, "worker.py", "worker", "--burst"],
        cwd=ROOT,
        env=worker(race_db, settings, SEND_CONCURRENCY="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: fake.stats()["requests"] > before, 60, "the first follow-up's call")
        claimed = follow_ups()
        assert {m.status for m in claimed.values()} == {MessageStatus.SENDING}
        in_order = sorted(numbers, key=lambda phone: claimed[phone].id)
        repliers = in_order[6:]
        client = live.test_client()
        for n, phone in enumerate(repliers):
            with live.app_context():
                reply(client, phone, 5000 + n)  # answered 200: accepted
        calls_started = fake.stats()["requests"] - before
        assert calls_started <= 6, f"{calls_started} calls started before the replies were in"
        fake.configure(latency_ms=0)
        assert process.wait(timeout=120) == 0, process.stderr.read()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    rows = follow_ups()
    for phone in repliers:
        assert rows[phone].status == MessageStatus.CANCELLED, phone
        assert rows[phone].cancel_reason == "replied"
    for phone in in_order[:6]:
        assert rows[phone].status == MessageStatus.SENT, phone
    sent_to = [m["to"] for m in fake.messages() if m["body"] == "Follow-up"]
    assert sorted(sent_to) == sorted(in_order[:6])
