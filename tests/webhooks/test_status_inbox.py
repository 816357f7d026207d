"""Status callbacks accepted with one insert and applied in bulk: monotonic whatever the order
or the batching, a callback by SID waiting for its message's SID, nothing lost with the worker
or Redis down (the tick sweeps), and the statements each webhook request costs."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs import QUEUE_SENDING, get_queue
from app.jobs.tick import tick
from app.jobs.webhooks import APPLY_JOB, apply_status_callbacks
from app.models import MessageStatus, OutboundMessage, StatusCallback, Step, WebhookEvent, utcnow
from app.sending.engine import claim_batch, record_results
from app.sending.policy import Outcome, SendResult
from app.sending.status import StatusUpdate, apply_status_update
from app.sending.transports import get_transport
from app.webhooks.inbox import SID_RETRY, apply_pending_callbacks, pending_count
from tests.factories import (
    BroadcastFactory,
    ContactFactory,
    OutboundMessageFactory,
    sent_with_follow_up,
)
from tests.webhooks.signing import HOOK_SETTINGS, inbound_params, post_twilio

STATUS = "/webhooks/twilio/status"
INBOUND = "/webhooks/twilio/inbound"


def post_status(client, status: str, *, message_id: int | None, sid: str | None, **extra: str):
    path = f"{STATUS}?m={message_id}" if message_id is not None else STATUS
    params = {"MessageStatus": status, "AccountSid": "AC" + "0" * 32, **extra}
    if sid:
        params["MessageSid"] = sid
    response = post_twilio(client, path, params)
    assert response.status_code == 204, response.data
    return response


def sent_messages(n: int) -> list[tuple[int, str]]:
    """(id, SID) of `n` sent first messages, committed."""
    messages = OutboundMessageFactory.create_batch(n, sent=True, provider_status="queued")
    db.session.commit()
    return [(m.id, m.provider_sid) for m in messages]


def reload(message_id: int) -> OutboundMessage:
    db.session.expire_all()
    return db.session.get(OutboundMessage, message_id)


@pytest.fixture
def count_statements(db_connection):
    """The SQL statements the app sends, savepoints (the tests' commits) left out."""
    seen: list[str] = []

    def listen(conn, cursor, statement, params, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            seen.append(statement)

    sa.event.listen(db_connection, "before_cursor_execute", listen)
    yield seen
    sa.event.remove(db_connection, "before_cursor_execute", listen)


# -- accepted with one insert, applied in bulk ----------------------------------------------
def test_a_status_callback_is_one_insert_answered_204_and_applied_by_the_bulk_pass(
    hooks, count_statements
):
    [(message_id, sid)] = sent_messages(1)
    count_statements.clear()
    post_status(hooks, "delivered", message_id=message_id, sid=sid)
    assert len(count_statements) == 1 and count_statements[0].startswith(
        "INSERT INTO status_callbacks"
    )
    assert reload(message_id).status == MessageStatus.SENT  # not yet: the worker applies it
    assert (
        pending_count() == 1 and db.session.scalar(sa.select(sa.func.count(WebhookEvent.id))) == 0
    )

    assert apply_pending_callbacks() == {"applied": 1, "unchanged": 0, "busy": 0, "waiting": 0}
    assert reload(message_id).status == MessageStatus.DELIVERED
    [event] = db.session.scalars(sa.select(WebhookEvent))
    assert event.source == "twilio_status" and event.signature_ok
    assert event.outcome == f"delivered for message {message_id}: applied"
    assert "MessageStatus=delivered" in event.payload
    assert pending_count() == 0


def test_the_apply_job_takes_everything_accepted_in_its_window(hooks, redis_conn):
    messages = sent_messages(3)
    for message_id, sid in messages:
        post_status(hooks, "delivered", message_id=message_id, sid=sid)
    # The first callback opened the window and asked for one job, at the front of the queue.
    queue = get_queue(hooks.application, QUEUE_SENDING)
    assert [job.func_name for job in queue.get_jobs()] == [APPLY_JOB]
    result = apply_status_callbacks()
    assert result["applied"] == 3 and result["passes"] == 1
    assert {reload(m).status for m, _ in messages} == {MessageStatus.DELIVERED}


@pytest.mark.parametrize("batch", [1, 4, 1000])
def test_bulk_application_is_monotonic_and_the_same_as_one_by_one(hooks, batch):
    rng = random.Random(batch)
    statuses = ["sending", "sent", "delivered", "undelivered", "failed", "read", "receiving"]
    rank = {"receiving": 0, "sending": 2, "sent": 3, "delivered": 5, "undelivered": 5}
    rank.update(failed=5, read=6)
    twins = [(sent_messages(1)[0], sent_messages(1)[0]) for _ in range(12)]
    # The same callbacks, shuffled across messages (out of order, twice, unknown values): one
    # twin through the webhook and the bulk pass, `batch` at a time; the other applied one by
    # one, as the webhook used to.
    calls = [(n, rng.choice(statuses)) for n in range(len(twins)) for _ in range(rng.randint(1, 6))]
    rng.shuffle(calls)
    for n, status in calls:
        (bulk_id, bulk_sid), (single_id, single_sid) = twins[n]
        code = "30003" if status in ("undelivered", "failed") else None
        post_status(
            hooks, status, message_id=bulk_id, sid=bulk_sid, **({"ErrorCode": code} if code else {})
        )
        apply_status_update(
            StatusUpdate(status, message_id=single_id, provider_sid=single_sid, error_code=code)
        )
    db.session.commit()
    while pending_count():
        apply_pending_callbacks(limit=batch)
    for n, ((bulk_id, _), (single_id, _)) in enumerate(twins):
        bulk, single = reload(bulk_id), reload(single_id)
        columns = ("status", "provider_status", "error_code", "error_message")
        assert [getattr(bulk, c) for c in columns] == [getattr(single, c) for c in columns]
        arrived = [status for m, status in calls if m == n]
        known = [s for s in arrived if rank[s]]
        if known:
            # The furthest status wins; among finals, the first to arrive; "read" is delivered.
            best = max(rank[s] for s in known)
            first_best = next(s for s in known if rank[s] == best)
            # (An unknown value is kept only while nothing final is set, so before a final
            # status it may be replaced by any known one.)
            if "receiving" not in arrived or best >= 5:
                assert bulk.provider_status == first_best
        assert (bulk.delivered_at is not None) == (bulk.status == MessageStatus.DELIVERED)


# -- a callback before the message has its SID ------------------------------------------------
def test_a_callback_by_sid_before_the_worker_records_the_sid_is_applied_once_it_has_it(make_app):
    app = make_app(**HOOK_SETTINGS, SEND_RATE_MPS=1000.0)
    with app.app_context():
        broadcast = BroadcastFactory(sending=True, delay_seconds=900)
        OutboundMessageFactory(broadcast=broadcast, contact=ContactFactory())
        db.session.commit()
        [claimed] = claim_batch(10)
        sid = "SM" + "7" * 32
        # Twilio's receipt (by SID only) beats the worker's record of the answer.
        post_status(app.test_client(), "delivered", message_id=None, sid=sid)
        assert apply_pending_callbacks() == {"applied": 0, "unchanged": 0, "busy": 0, "waiting": 1}
        held = db.session.scalar(sa.select(StatusCallback))
        assert held.retry_at is not None and reload(claimed.id).status == MessageStatus.SENDING

        result = SendResult(Outcome.ACCEPTED, provider_sid=sid, provider_status="queued")
        record_results(app, get_transport(app), [(claimed, result)])
        later = utcnow() + SID_RETRY + timedelta(seconds=1)
        assert apply_pending_callbacks(now=later)["applied"] == 1
        message = reload(claimed.id)
        assert message.status == MessageStatus.DELIVERED and message.provider_sid == sid
        follow_ups = db.session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.step == Step.SECOND)
        ).all()
        assert len(follow_ups) == 1 and pending_count() == 0


def test_a_callback_by_sid_that_never_matches_is_logged_after_an_hour(hooks):
    post_status(hooks, "delivered", message_id=None, sid="SMnobody")
    assert apply_pending_callbacks()["waiting"] == 1
    assert apply_pending_callbacks(now=utcnow() + timedelta(hours=1, seconds=1))["unchanged"] == 1
    assert db.session.scalar(sa.select(WebhookEvent.outcome)) == (
        "delivered for sid SMnobody: no change (no message has this SID)"
    )
    assert pending_count() == 0


# -- nothing lost with Redis or the workers down ------------------------------------------------
def test_with_redis_down_callbacks_are_accepted_and_the_tick_applies_them(make_app):
    down = make_app(**HOOK_SETTINGS, REDIS_URL="redis://127.0.0.1:9/0")
    [(message_id, sid)] = sent_messages(1)
    client = down.test_client()
    for status in ("sent", "delivered"):
        post_status(client, status, message_id=message_id, sid=sid)
    assert pending_count() == 2 and reload(message_id).status == MessageStatus.SENT
    # After the first failure this web process stops asking Redis for a few seconds.
    assert down.extensions["status_nudge_paused_until"] > time.monotonic()

    result = tick()  # Redis is back; nobody ever asked a worker for these
    assert result["callbacks_applied"] == 2 and result["callbacks_waiting"] == 0
    assert reload(message_id).status == MessageStatus.DELIVERED and pending_count() == 0


def test_with_no_worker_running_the_tick_sweeps_and_the_late_job_finds_nothing(hooks):
    [(message_id, sid)] = sent_messages(1)
    post_status(hooks, "undelivered", message_id=message_id, sid=sid)
    queue = get_queue(hooks.application, QUEUE_SENDING)
    assert [job.func_name for job in queue.get_jobs()] == [APPLY_JOB]  # waiting for a worker
    assert tick()["callbacks_applied"] == 1
    assert reload(message_id).status == MessageStatus.UNDELIVERED
    assert apply_status_callbacks()["applied"] == 0  # the worker, back at last
    assert db.session.scalar(sa.select(sa.func.count(WebhookEvent.id))) == 1


# -- statements per request ----------------------------------------------------------------
def test_statements_per_webhook_request_do_not_grow(hooks, count_statements):
    contact = ContactFactory()
    first, follow_up = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    phone, first_id, first_sid, follow_up_id = (
        contact.phone,
        first.id,
        first.provider_sid,
        follow_up.id,
    )

    def statements(path: str, params: dict[str, str]) -> int:
        count_statements.clear()
        assert post_twilio(hooks, path, params).status_code in (200, 204)
        return len(count_statements)

    # A reply: sender + keywords + answered message, insert + cancel, the webhook log.
    assert statements(INBOUND, inbound_params("SMr1", phone, "Thanks")) == 3
    assert reload(follow_up_id).status == MessageStatus.CANCELLED
    # The same SMS again: found a duplicate by the same statements.
    assert statements(INBOUND, inbound_params("SMr1", phone, "Thanks")) == 3
    # A new number: one more, to create the contact.
    assert statements(INBOUND, inbound_params("SMr2", "+13135550177", "Hello")) == 4
    status = {"MessageSid": first_sid, "MessageStatus": "delivered"}
    assert statements(f"{STATUS}?m={first_id}", status) == 1
