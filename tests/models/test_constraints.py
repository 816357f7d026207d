"""Rules the database itself enforces, and UTC-aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastSegment,
    BroadcastStatus,
    Campaign,
    InboundMessage,
    OutboundMessage,
    Step,
    User,
)
from tests.factories import BroadcastFactory, ContactFactory, SegmentFactory, UserFactory


def _violates(statement_callable) -> None:
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            statement_callable()
            db.session.flush()


def test_only_one_upcoming_broadcast_can_exist():
    BroadcastFactory(status=BroadcastStatus.UPCOMING)
    db.session.flush()
    _violates(lambda: BroadcastFactory(status=BroadcastStatus.UPCOMING))
    # Any number of past broadcasts is fine.
    BroadcastFactory(status=BroadcastStatus.SENT)
    BroadcastFactory(status=BroadcastStatus.SENT)
    db.session.flush()
    count = db.session.scalar(
        sa.select(sa.func.count()).where(Broadcast.status == BroadcastStatus.UPCOMING)
    )
    assert count == 1


def test_one_outbound_message_per_send_contact_and_step():
    broadcast = BroadcastFactory()
    contact = ContactFactory()
    db.session.flush()

    def message(step=Step.FIRST, **kwargs):
        kwargs.setdefault("broadcast_id", broadcast.id)
        return OutboundMessage(contact_id=contact.id, step=step, body="hi", **kwargs)

    db.session.add_all([message(Step.FIRST), message(Step.SECOND)])
    db.session.flush()
    _violates(lambda: db.session.add(message(Step.FIRST)))

    campaign = Campaign(first_message="hello")
    db.session.add(campaign)
    db.session.flush()
    db.session.add(message(Step.FIRST, broadcast_id=None, campaign_id=campaign.id))
    db.session.flush()
    _violates(
        lambda: db.session.add(message(Step.FIRST, broadcast_id=None, campaign_id=campaign.id))
    )


def test_an_outbound_message_belongs_to_exactly_one_send():
    broadcast = BroadcastFactory()
    contact = ContactFactory()
    campaign = Campaign(first_message="hello")
    db.session.add(campaign)
    db.session.flush()
    _violates(lambda: db.session.add(OutboundMessage(contact_id=contact.id, body="x")))
    _violates(
        lambda: db.session.add(
            OutboundMessage(
                contact_id=contact.id, body="x", broadcast_id=broadcast.id, campaign_id=campaign.id
            )
        )
    )


def test_inbound_provider_id_is_stored_once():
    db.session.add(InboundMessage(provider_id="SM1", provider="twilio", phone="+13135550101"))
    db.session.flush()
    _violates(
        lambda: db.session.add(
            InboundMessage(provider_id="SM1", provider="twilio", phone="+13135550101")
        )
    )


def test_a_broadcast_has_at_most_one_filler_segment_and_ratios_are_percentages():
    broadcast = BroadcastFactory()
    first, second = SegmentFactory(), SegmentFactory()
    db.session.flush()
    db.session.add(BroadcastSegment(broadcast=broadcast, segment=first, ratio=50, is_filler=True))
    db.session.flush()
    _violates(
        lambda: db.session.add(
            BroadcastSegment(broadcast=broadcast, segment=second, ratio=10, is_filler=True)
        )
    )
    _violates(
        lambda: db.session.add(BroadcastSegment(broadcast=broadcast, segment=second, ratio=150))
    )


def test_user_emails_are_unique_whatever_the_case():
    UserFactory(email="person@example.org")
    db.session.flush()
    _violates(lambda: UserFactory(email="person@example.org"))
    # Mixed case cannot even be stored: emails are lower-cased on the way in.
    _violates(lambda: UserFactory(email="Person@Example.org"))


def test_statuses_outside_the_enum_are_refused():
    with pytest.raises(StatementError):
        with db.session.begin_nested():
            db.session.execute(
                sa.insert(User).values(
                    email="x@example.org",
                    name="",
                    password_hash="x",
                    role="superuser",
                    active=True,
                    created_at=datetime.now(UTC),
                    updated_at=datetime.now(UTC),
                )
            )


def test_timestamps_come_back_timezone_aware_in_utc():
    detroit = timezone(timedelta(hours=-5))
    user = UserFactory(last_login_at=datetime(2026, 3, 8, 1, 30, tzinfo=detroit))
    db.session.flush()
    db.session.expire_all()
    loaded = db.session.get(User, user.id)
    assert loaded.last_login_at == datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    assert loaded.last_login_at.tzinfo == UTC
    assert loaded.created_at.tzinfo == UTC


def test_naive_datetimes_are_refused_rather_than_guessed():
    with pytest.raises(StatementError, match="naive datetime"):
        with db.session.begin_nested():
            UserFactory(last_login_at=datetime(2026, 1, 1, 12, 0))
            db.session.flush()


def test_the_database_itself_refuses_statuses_outside_the_enum():
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.execute(
                sa.text(
                    "INSERT INTO users (email, name, password_hash, role, active, session_token,"
                    " created_at, updated_at) VALUES ('x@example.org', '', 'x', 'superuser', true,"
                    " 't', now(), now())"
                )
            )
