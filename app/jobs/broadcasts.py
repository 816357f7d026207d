"""Broadcast jobs: the test send of the upcoming texts to the staff numbers."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.broadcasts.services import test_send_check
from app.extensions import db
from app.jobs.runs import recorded_run
from app.models import Broadcast
from app.sending.policy import Outcome
from app.sending.transports import OutboundItem, get_transport
from app.settings.services import staff_numbers


def test_send_broadcast(broadcast_id: int, user_id: int) -> dict[str, Any]:
    """Send the broadcast's current first (and follow-up) text to each staff number, now.

    No outbound rows and no statistics: a test is not a send. Recorded as a job run with what
    the provider said for each number. Running it twice sends the test twice (it is a test).
    """
    app = current_app._get_current_object()
    with recorded_run("test_send_broadcast") as run:
        broadcast = db.session.get(Broadcast, broadcast_id)
        numbers = staff_numbers()
        run.counts.update(broadcast=broadcast_id, user=user_id)
        refusal = test_send_check(broadcast, numbers)
        if refusal:
            run.skip(refusal)
            return dict(run.counts)
        bodies = [broadcast.first_message]
        if broadcast.second_message:
            bodies.append(broadcast.second_message)
        db.session.commit()  # nothing held open while the provider answers
        transport = get_transport(app)
        sent = failed = 0
        problems = []
        for to in numbers:
            for body in bodies:
                result = transport.send(OutboundItem(id=0, to=to, body=body))
                if result.outcome is Outcome.ACCEPTED:
                    sent += 1
                else:
                    failed += 1
                    problems.append(f"{to}: {result.error_code or ''} {result.error_message or ''}")
        run.counts.update(numbers=len(numbers), sent=sent, failed=failed)
        if problems:
            run.counts["problems"] = "; ".join(problems)[:500]
    return {"run_id": run.run_id, **run.counts}


test_send_broadcast.__test__ = False  # a job, not a test, though its name starts with test_
