"""The contact page's timeline shows inbound messages with their keyword, what they answered,
and the follow-up a reply cancelled."""

from __future__ import annotations

import re
from datetime import timedelta

from app.extensions import db
from app.inbound.services import InboundSMS, record_inbound
from app.models import utcnow
from tests.factories import ContactFactory, sent_with_follow_up
from tests.support import by_id


def test_the_timeline_shows_a_reply_its_send_and_the_cancelled_follow_up(viewer_client):
    contact = ContactFactory()
    first, _ = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    record_inbound(InboundSMS("twilio", "SMr", contact.phone, "Loved it <3"), reply_window_hours=36)
    db.session.commit()
    html = viewer_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    timeline = by_id(html, "contacts-timeline")
    assert "Loved it &lt;3" in timeline
    assert f"Broadcast #{first.broadcast_id} · answers the first message · via Twilio" in timeline
    assert "second message · cancelled: replied" in timeline
    # Each message's exact time says how long ago too.
    assert re.search(
        r"E[SD]T <span class=\"muted\">\((just now|\d+ minutes? ago)\)</span>", timeline
    )


def test_the_timeline_shows_a_stop_as_an_opt_out_and_the_contact_as_unsubscribed(viewer_client):
    contact = ContactFactory()
    db.session.commit()
    record_inbound(InboundSMS("twilio", "SMs", contact.phone, "STOP"), reply_window_hours=36)
    db.session.commit()
    html = viewer_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    timeline = by_id(html, "contacts-timeline")
    assert (
        "opt-out · via Twilio" in timeline
        and '<span class="badge badge--stop">STOP</span>' in timeline
    )
    status = by_id(html, "contacts-status-card")
    assert "unsubscribed" in status.text and "texted “STOP”" in status.text


def test_a_delivered_message_does_not_repeat_its_status_beside_the_badge(viewer_client):
    contact = ContactFactory()
    first, _ = sent_with_follow_up(contact, sent_at=utcnow() - timedelta(minutes=5))
    first.status = "delivered"
    first.provider_status = "delivered"
    db.session.commit()
    html = viewer_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    item = by_id(html, f"contacts-timeline-out-{first.id}").text
    assert "first message" in item and "first message · delivered" not in item
    assert "delivered" in item  # the badge says it once
