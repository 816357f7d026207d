"""Property: over any mix of statuses, no percentage passes 100 % and the parts add up to the
whole (people with people, messages with messages)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.models import (
    BroadcastStatus,
    Contact,
    InboundMessage,
    Keyword,
    MessageStatus,
    OutboundMessage,
    Step,
    utcnow,
)
from app.sends.stats import compute_stats
from tests.factories import BroadcastFactory

STATUSES = [s.value for s in MessageStatus]
# A provider id only on what a provider could have accepted.
WITH_SID = {"sent", "delivered", "undelivered", "failed", "unknown"}
_phones = itertools.count(1)

PERSON = st.fixed_dictionaries(
    {
        "first": st.sampled_from(STATUSES),
        "first_sid": st.booleans(),
        "second": st.one_of(st.none(), st.sampled_from(STATUSES)),
        "second_sid": st.booleans(),
        "by_reply": st.booleans(),
        "replies": st.integers(0, 2),
        "stop": st.booleans(),
        "carrier_opt_out": st.booleans(),
        "segments": st.integers(1, 4),
    }
)


def add(broadcast, contact, step, status, sid, **fields):
    row = OutboundMessage(
        broadcast_id=broadcast.id,
        contact_id=contact.id,
        step=step,
        body="x",
        status=status,
        provider_sid=f"SM{broadcast.id}-{contact.id}-{step.value}" if sid else None,
        **fields,
    )
    db.session.add(row)
    return row


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=st.lists(PERSON, max_size=25))
def test_no_percentage_passes_100_and_the_parts_add_up(app, people):
    broadcast = BroadcastFactory(status=BroadcastStatus.SENDING, started_at=utcnow())
    contacts = [Contact(phone=f"+1248555{next(_phones):04d}") for _ in people]
    db.session.add_all(contacts)
    db.session.flush()
    failed_before_acceptance = 0
    for person, contact in zip(people, contacts, strict=True):
        first_sid = person["first_sid"] and person["first"] in WITH_SID
        first = add(
            broadcast,
            contact,
            Step.FIRST,
            person["first"],
            first_sid,
            sms_segments=person["segments"],
            error_code="21610" if person["carrier_opt_out"] else None,
        )
        failed_before_acceptance += person["first"] == "failed" and not first_sid
        if person["second"] is not None:
            second_sid = person["second_sid"] and person["second"] in WITH_SID
            add(
                broadcast,
                contact,
                Step.SECOND,
                person["second"],
                second_sid,
                cancel_reason="replied" if person["by_reply"] else None,
            )
            failed_before_acceptance += person["second"] == "failed" and not second_sid
        db.session.flush()
        for i in range(person["replies"] + person["stop"]):
            stop = i == person["replies"]
            db.session.add(
                InboundMessage(
                    provider_id=f"in-{broadcast.id}-{contact.id}-{i}",
                    provider="twilio",
                    phone=contact.phone,
                    body="STOP" if stop else "Thanks",
                    keyword=Keyword.STOP if stop else None,
                    contact_id=contact.id,
                    reply_to_id=first.id,
                )
            )
    db.session.flush()
    stats = compute_stats(broadcast)
    recipients = len(people)

    for name in ("delivery_rate", "reply_rate"):
        assert stats[name] is None or 0 <= stats[name] <= 1, (name, stats[name])
    # People: each step of the funnel is part of the one before, all within the recipients.
    assert stats["recipients"] == recipients
    assert stats["first_delivered"] <= stats["first_sent"] <= recipients
    assert stats["replies"] <= recipients and stats["unsubscribes"] <= recipients
    assert stats["first_done"] + stats["first_waiting"] + stats["first_held"] == recipients
    assert sum(stats["by_status"]["first"].values()) == recipients
    # Follow-ups: one per person at most, split into their outcomes.
    created = stats["follow_ups_created"]
    assert created == sum(p["second"] is not None for p in people) <= recipients
    assert sum(stats["by_status"]["second"].values()) == created
    assert stats["follow_ups_delivered"] <= stats["second_sent"] <= created
    assert stats["cancelled_by_reply"] + stats["follow_ups_waiting"] <= created
    # Messages: accepted = delivered + awaiting receipt + failed after acceptance.
    assert stats["messages_sent"] == stats["first_sent"] + stats["second_sent"]
    failed_after = stats["failed"] - failed_before_acceptance
    assert stats["messages_sent"] == stats["delivered"] + stats["awaiting_receipt"] + failed_after
    assert sum(n for _, n in stats["failed_by_code"]) <= stats["failed"]
    receipts = stats["delivered"] + stats["failed"]
    if receipts:
        assert stats["delivery_rate"] == round(stats["delivered"] / receipts, 4)
    else:
        assert stats["delivery_rate"] is None
