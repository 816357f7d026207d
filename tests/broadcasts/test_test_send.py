"""The test send: the upcoming broadcast's texts go to each staff test number, through the
transport but without outbound rows, and the job says why when there is nothing to do."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.jobs.broadcasts import test_send_broadcast as send_test
from app.models import JobOutcome, JobRun, OutboundMessage, Setting
from app.sending.policy import Outcome, SendResult
from app.settings.services import STAFF_NUMBERS_SETTING
from tests.factories import BroadcastFactory


class RecordingTransport:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, item):
        self.sent.append((item.to, item.body))
        if item.to.endswith("0000"):
            return SendResult(Outcome.FAILED, error_code="21211", error_message="bad number")
        return SendResult(Outcome.ACCEPTED, provider_sid="SMtest")


def test_the_test_send_job_texts_each_staff_number_without_outbound_rows(app):
    broadcast = BroadcastFactory(first_message="First", second_message="Second")
    db.session.add(Setting(key=STAFF_NUMBERS_SETTING, value=["+13135550101", "+13135550000"]))
    db.session.commit()
    transport = RecordingTransport()
    app.extensions["transport"] = transport
    try:
        result = send_test(broadcast.id, 1)
    finally:
        app.extensions.pop("transport", None)
    assert transport.sent == [
        ("+13135550101", "First"),
        ("+13135550101", "Second"),
        ("+13135550000", "First"),
        ("+13135550000", "Second"),
    ]
    assert result["sent"] == 2 and result["failed"] == 2 and "bad number" in result["problems"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0
    run = db.session.get(JobRun, result["run_id"])
    assert run.name == "test_send_broadcast" and run.outcome == JobOutcome.SUCCESS


def test_the_test_send_job_skips_without_numbers(app):
    broadcast = BroadcastFactory()
    db.session.commit()
    result = send_test(broadcast.id, 1)
    assert result["skipped"].startswith("There are no staff test numbers yet")
