"""Status reconciliation of messages sent through Missive: matched through Twilio's Messages list
(the real twilio client paging the fake Twilio), never guessed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import MessageStatus, OutboundMessage, Setting, Step, utcnow
from app.sending.reconcile import LIST_CURSOR, reconcile_statuses
from tests.factories import BroadcastFactory, ContactFactory, OutboundMessageFactory
from tests.fakes.twilio import FakeTwilio

MISSIVE_FROM = "+13135550100"
_drafts = itertools.count(1)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=5) as server:
        yield server


@pytest.fixture
def app(engine_app, fake) -> Iterator:
    app = engine_app(
        TRANSPORT="missive",
        MISSIVE_API_TOKEN="missive-token",
        MISSIVE_FROM_NUMBER=MISSIVE_FROM,
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        TWILIO_API_BASE_URL=fake.url,
        TWILIO_READS_PER_SECOND=1000.0,
    )
    with app.app_context():
        yield app


def sent_via_missive(minutes_ago: float = 30, status=MessageStatus.SENT, **fields):
    """A row the engine recorded as sent through Missive `minutes_ago` (Missive's id only)."""
    claimed = utcnow() - timedelta(minutes=minutes_ago)
    draft = f"draft-{next(_drafts)}"
    message = OutboundMessageFactory(
        status=status,
        transport="missive",
        provider_sid=draft if status != MessageStatus.SENDING else None,
        missive_draft_id=draft if status != MessageStatus.SENDING else None,
        provider_status="sent" if status != MessageStatus.SENDING else None,
        claimed_at=claimed,
        sent_at=claimed + timedelta(seconds=2) if status != MessageStatus.SENDING else None,
        **fields,
    )
    db.session.commit()
    return message


def at_twilio(fake, message, status="delivered", error_code=None, *, after_s=4, **changes):
    """The Twilio message Missive's integration created for `message`, `after_s` after its claim."""
    return fake.add_message(
        changes.get("to", message.contact.phone),
        changes.get("body", message.body),
        status,
        error_code,
        from_=changes.get("from_", MISSIVE_FROM),
        created_at=message.claimed_at + timedelta(seconds=after_s),
    )


def fresh(message: OutboundMessage) -> OutboundMessage:
    db.session.expire_all()
    return db.session.get(OutboundMessage, message.id)


def test_an_exact_match_stores_the_twilio_sid_and_applies_its_status(app, fake):
    delivered = sent_via_missive(40)
    failed = sent_via_missive(20)
    delivered_sid = at_twilio(fake, delivered, "delivered")
    failed_sid = at_twilio(fake, failed, "undelivered", 30003)
    counts = reconcile_statuses(app)
    assert (counts["matched"], counts["ambiguous"], counts["unmatched"]) == (2, 0, 0)
    assert counts["listed"] == 2 and counts["list_updated"] == 2
    # The by-SID figures count only what was fetched by SID: none here.
    assert (counts["checked"], counts["updated"]) == (0, 0)
    row = fresh(delivered)
    assert row.twilio_sid == delivered_sid and row.status == MessageStatus.DELIVERED
    assert row.provider_sid == row.missive_draft_id  # Missive's id is kept
    row = fresh(failed)
    assert row.twilio_sid == failed_sid and row.status == MessageStatus.UNDELIVERED
    assert row.error_code == "30003"
    # The list is asked for our Missive number's messages since the oldest open one.
    query = parse_qs(fake.list_queries[0])
    assert query["From"] == [MISSIVE_FROM] and query["PageSize"] == ["1000"]
    assert query["DateSent>"][0] <= (delivered.claimed_at).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_matched_message_is_fetched_by_its_sid_on_later_runs(app, fake):
    message = sent_via_missive(30)
    sid = at_twilio(fake, message, "sent")
    assert reconcile_statuses(app)["matched"] == 1
    assert fresh(message).status == MessageStatus.SENT and fake.fetches.get(sid) is None
    fake.set_status(sid, "delivered")
    counts = reconcile_statuses(app)
    assert counts["checked"] == 1 and counts["updated"] == 1 and fake.fetches[sid] == 1
    assert fresh(message).status == MessageStatus.DELIVERED


def test_two_twilio_messages_fitting_one_row_leave_it_alone(app, fake):
    message = sent_via_missive(30)
    at_twilio(fake, message, "delivered", after_s=3)
    at_twilio(fake, message, "undelivered", 30003, after_s=40)  # sent again by hand
    counts = reconcile_statuses(app)
    assert (counts["matched"], counts["ambiguous"], counts["unmatched"]) == (0, 1, 0)
    row = fresh(message)
    assert row.twilio_sid is None and row.status == MessageStatus.SENT


def test_a_twilio_message_fitting_a_first_message_and_its_follow_up_is_not_guessed(app, fake):
    broadcast = BroadcastFactory(sending=True, second_message="Same words")
    contact = ContactFactory()
    first = sent_via_missive(30, broadcast=broadcast, contact=contact, body="Same words")
    second = sent_via_missive(
        29, broadcast=broadcast, contact=contact, body="Same words", step=Step.SECOND
    )
    at_twilio(fake, first, "delivered")
    counts = reconcile_statuses(app)
    assert counts["matched"] == 0 and counts["ambiguous"] == 2
    assert {fresh(first).status, fresh(second).status} == {MessageStatus.SENT}
    assert fresh(first).twilio_sid is None and fresh(second).twilio_sid is None


def test_a_first_message_and_its_follow_up_with_their_own_texts_each_get_their_own(app, fake):
    broadcast = BroadcastFactory(sending=True)
    contact = ContactFactory()
    first = sent_via_missive(30, broadcast=broadcast, contact=contact, body="First words")
    second = sent_via_missive(
        25, broadcast=broadcast, contact=contact, body="Second words", step=Step.SECOND
    )
    at_twilio(fake, first, "undelivered", 30003)
    at_twilio(fake, second, "delivered")
    assert reconcile_statuses(app)["matched"] == 2
    assert fresh(first).status == MessageStatus.UNDELIVERED
    assert fresh(second).status == MessageStatus.DELIVERED


def test_nothing_fitting_is_unmatched_and_changes_nothing(app, fake):
    message = sent_via_missive(30)
    at_twilio(fake, message, body=message.body + "!")  # other words
    at_twilio(fake, message, to="+13135557777")  # someone else
    at_twilio(fake, message, from_="+13135550199")  # another sender: not even listed
    at_twilio(fake, message, after_s=3600)  # an hour later
    counts = reconcile_statuses(app)
    assert counts["listed"] == 3  # the other sender's message is filtered out by Twilio
    assert (counts["matched"], counts["ambiguous"], counts["unmatched"]) == (0, 0, 1)
    row = fresh(message)
    assert row.twilio_sid is None and row.status == MessageStatus.SENT


def test_a_sending_first_message_resolved_through_the_list_gets_one_follow_up(app, fake):
    broadcast = BroadcastFactory(sending=True, second_message="Later", delay_seconds=600)
    first = sent_via_missive(30, status=MessageStatus.SENDING, broadcast=broadcast)
    at_twilio(fake, first, "delivered")
    assert reconcile_statuses(app)["matched"] == 1
    reconcile_statuses(app)
    row = fresh(first)
    assert row.status == MessageStatus.DELIVERED and row.sent_at is not None
    follow_ups = db.session.scalars(
        sa.select(OutboundMessage).where(
            OutboundMessage.broadcast_id == broadcast.id, OutboundMessage.step == Step.SECOND
        )
    ).all()
    assert len(follow_ups) == 1 and follow_ups[0].status == MessageStatus.SCHEDULED


def test_pages_are_followed_and_a_stopped_scan_resumes_from_its_cursor(app, fake):
    messages = [sent_via_missive(120 - 15 * i) for i in range(7)]  # 15 minutes apart
    sids = [at_twilio(fake, m, "delivered") for m in messages]
    key = LIST_CURSOR + "all"
    first = reconcile_statuses(app, page_size=2, max_pages=2)
    assert first["listed"] == 4 and len(fake.list_queries) == 2
    cursor = db.session.get(Setting, key).value
    assert "PageToken" in cursor["page_url"]
    # The newest rows are decided already; the one at the bottom of page 2 may wait for page 3.
    assert 2 <= first["matched"] <= 4
    second = reconcile_statuses(app, page_size=2)
    # Continued from the stored page (not from the first one again) to the last page.
    resumed = parse_qs(fake.list_queries[2])
    assert "PageToken" in resumed
    assert first["matched"] + second["matched"] == 7 and second["ambiguous"] == 0
    assert [fresh(m).twilio_sid for m in messages] == sids
    assert {fresh(m).status for m in messages} == {MessageStatus.DELIVERED}
    assert db.session.get(Setting, key) is None  # the scan finished
    assert reconcile_statuses(app, page_size=2)["matched"] == 0  # nothing left to list


def test_one_send_only_lists_for_its_own_rows(app, fake):
    mine = sent_via_missive(30)
    other = sent_via_missive(31)
    at_twilio(fake, mine)
    at_twilio(fake, other)
    counts = reconcile_statuses(app, send=mine.broadcast)
    assert counts["matched"] == 1
    assert fresh(mine).status == MessageStatus.DELIVERED
    assert fresh(other).status == MessageStatus.SENT and fresh(other).twilio_sid is None


def test_a_429_on_a_list_page_is_waited_out(app, fake):
    message = sent_via_missive(30)
    at_twilio(fake, message)
    fake.answer_reads_with_429(2)
    counts = reconcile_statuses(app)
    assert counts["rate_limited"] == 2 and counts["matched"] == 1 and counts["list_errors"] == 0


def test_without_twilio_credentials_the_run_says_why(engine_app):
    app = engine_app(TRANSPORT="missive", MISSIVE_API_TOKEN="t", MISSIVE_FROM_NUMBER=MISSIVE_FROM)
    with app.app_context():
        assert "TWILIO_ACCOUNT_SID" in reconcile_statuses(app)["skipped"]
