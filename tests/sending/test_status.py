"""Provider status updates are monotonic, idempotent, and never crash on unknown values."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Contact, ExcludeReason, MessageStatus, OutboundMessage
from app.sending.engine import send_batch
from app.sending.status import StatusUpdate, apply_status_update


@pytest.fixture
def message(sim_app, make_send) -> OutboundMessage:
    make_send(1)
    send_batch(sim_app)
    db.session.expire_all()
    return db.session.scalar(db.select(OutboundMessage).where(OutboundMessage.step == "first"))


def apply(message: OutboundMessage, status: str, **fields) -> OutboundMessage:
    apply_status_update(StatusUpdate(status, message_id=message.id, **fields))
    db.session.commit()
    db.session.expire_all()
    return db.session.get(OutboundMessage, message.id)


def test_statuses_move_forward_and_a_late_sent_never_overwrites_delivered(message):
    assert apply(message, "sending").provider_status == "sending"
    delivered = apply(message, "delivered")
    assert delivered.status == MessageStatus.DELIVERED and delivered.delivered_at is not None
    for late in ("sent", "sending", "queued", "delivered"):
        after = apply(message, late)
        assert after.status == MessageStatus.DELIVERED and after.provider_status == "delivered"
    assert apply(message, "read").provider_status == "read"
    assert apply(message, "read").status == MessageStatus.DELIVERED


def test_a_failure_keeps_its_error_code_and_later_statuses_do_not_undo_it(message):
    failed = apply(message, "undelivered", error_code="30003", error_message="Unreachable")
    assert failed.status == MessageStatus.UNDELIVERED and failed.error_code == "30003"
    assert apply(message, "sent").status == MessageStatus.UNDELIVERED


def test_an_unknown_status_value_is_stored_and_moves_nothing(message):
    after = apply(message, "Carrier-Pondering")
    assert after.provider_status == "carrier-pondering" and after.status == MessageStatus.SENT
    assert apply(message, "delivered").status == MessageStatus.DELIVERED
    assert apply(message, "carrier-pondering").provider_status == "delivered"


def test_a_callback_resolves_a_message_the_worker_never_recorded(sim_app, make_send):
    make_send(1)
    from app.sending.engine import claim_batch

    [claimed] = claim_batch(1)
    changed = apply_status_update(
        StatusUpdate("sent", message_id=claimed.id, provider_sid="SM" + "1" * 32)
    )
    db.session.commit()
    row = db.session.get(OutboundMessage, claimed.id)
    assert changed and row.status == MessageStatus.SENT and row.provider_sid == "SM" + "1" * 32


def test_a_callback_for_a_cancelled_or_unknown_id_changes_nothing(message):
    message.status = MessageStatus.CANCELLED
    db.session.commit()
    assert not apply_status_update(StatusUpdate("delivered", message_id=message.id))
    assert not apply_status_update(StatusUpdate("delivered", message_id=10**9))
    assert not apply_status_update(StatusUpdate("delivered", provider_sid="SMnope"))


def test_a_status_found_by_sid_alone_is_applied(message):
    apply_status_update(StatusUpdate("delivered", provider_sid=message.provider_sid))
    db.session.commit()
    assert db.session.get(OutboundMessage, message.id).status == MessageStatus.DELIVERED


def test_a_landline_error_excludes_the_contact_at_once(message):
    apply(message, "undelivered", error_code="30006")
    contact = db.session.get(Contact, message.contact_id)
    assert contact.excluded and contact.exclude_reason == ExcludeReason.UNDELIVERABLE


def test_the_simulator_reports_delivery_and_fails_numbers_ending_in_0000(sim_app, make_send):
    from app.jobs.sending import apply_simulated_statuses
    from app.sending.outbound import create_outbound
    from tests.factories import BroadcastFactory, ContactFactory

    broadcast = BroadcastFactory()
    good, bad = ContactFactory(phone="+13135551234"), ContactFactory(phone="+13135550000")
    create_outbound(broadcast, [good.id, bad.id], "Hi")
    db.session.commit()
    send_batch(sim_app)
    ids = [
        m.id
        for m in db.session.scalars(
            db.select(OutboundMessage).where(OutboundMessage.step == "first")
        )
    ]
    apply_simulated_statuses(ids)
    db.session.expire_all()
    by_contact = {
        m.contact_id: m
        for m in db.session.scalars(db.select(OutboundMessage).where(OutboundMessage.id.in_(ids)))
    }
    assert by_contact[good.id].status == MessageStatus.DELIVERED
    assert by_contact[bad.id].status == MessageStatus.UNDELIVERED
    assert by_contact[bad.id].error_code == "30006"
    assert db.session.get(Contact, bad.id).excluded
