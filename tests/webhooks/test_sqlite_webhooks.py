"""The webhooks' SQLite paths (the dev default): a reply stored and its follow-up cancelled in
two statements instead of PostgreSQL's one, and a status callback through the inbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.models import MessageStatus, OutboundMessage, utcnow
from app.webhooks.inbox import apply_pending_callbacks
from tests.factories import ContactFactory, sent_with_follow_up
from tests.support import make_test_config, run_flask, test_env
from tests.webhooks.signing import HOOK_SETTINGS, inbound_params, post_twilio

pytestmark = pytest.mark.slow


def test_on_sqlite_a_reply_cancels_its_follow_up_and_a_callback_is_applied(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
    app = create_app(make_test_config(database_url=url, **HOOK_SETTINGS))
    with app.app_context():
        contact = ContactFactory()
        first, follow_up = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=5))
        db.session.commit()
        ids = (first.id, follow_up.id)
        phone, sid = contact.phone, first.provider_sid
    client = app.test_client()
    reply = post_twilio(client, "/webhooks/twilio/inbound", inbound_params("SMs1", phone, "Hi"))
    assert reply.status_code == 200
    status = {"MessageSid": sid, "MessageStatus": "delivered"}
    assert post_twilio(client, f"/webhooks/twilio/status?m={ids[0]}", status).status_code == 204
    with app.app_context():
        assert apply_pending_callbacks()["applied"] == 1
        rows = dict(
            db.session.execute(
                sa.select(OutboundMessage.id, OutboundMessage.status).where(
                    OutboundMessage.id.in_(ids)
                )
            ).all()
        )
        assert rows == {ids[0]: MessageStatus.DELIVERED, ids[1]: MessageStatus.CANCELLED}
        db.session.remove()
        db.engine.dispose()
