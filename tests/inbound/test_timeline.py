"""The contact page's timeline shows inbound messages with their keyword, what they answered,
and the follow-up a reply cancelled."""

from __future__ import annotations

from datetime import timedelta

from app.extensions import db
from app.inbound.services import InboundSMS, record_inbound
from app.models import utcnow
from tests.inbound.conftest import sent_broadcast, sent_pair  # noqa: F401


def test_the_timeline_shows_a_reply_its_send_and_the_cancelled_follow_up(viewer_client, contact):
    broadcast = sent_broadcast()
    sent_pair(contact, broadcast, sent_at=utcnow() - timedelta(minutes=5))
    record_inbound(InboundSMS("twilio", "SMr", contact.phone, "Loved it <3"), reply_window_hours=36)
    db.session.commit()
    html = viewer_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Loved it &lt;3" in html
    assert f"Broadcast #{broadcast.id} · answers the first message · via twilio" in html
    assert "second message · cancelled: replied" in html


def test_the_timeline_shows_a_stop_as_an_opt_out_and_the_contact_as_unsubscribed(
    viewer_client, contact
):
    record_inbound(InboundSMS("twilio", "SMs", contact.phone, "STOP"), reply_window_hours=36)
    db.session.commit()
    html = viewer_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "opt-out · via twilio" in html and ">stop<" in html
    assert "unsubscribed" in html and "texted “STOP”" in html
