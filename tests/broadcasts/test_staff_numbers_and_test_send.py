"""Staff test numbers on the Settings page, and the test-send job that texts them."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.jobs.broadcasts import test_send_broadcast as send_test
from app.models import AuditLog, JobOutcome, JobRun, OutboundMessage, Setting
from app.sending.policy import Outcome, SendResult
from app.settings.services import STAFF_NUMBERS_SETTING, staff_numbers
from tests.factories import BroadcastFactory


def test_admin_saves_staff_numbers_normalised_and_audited(admin_client):
    response = admin_client.post(
        "/settings/staff-numbers",
        data={"staff_numbers": "(313) 555-0101\n+1 313 555 0102, 313-555-0101"},
    )
    assert response.status_code == 302
    assert staff_numbers() == ["+13135550101", "+13135550102"]
    entry = db.session.scalar(
        sa.select(AuditLog).where(AuditLog.action == "settings.staff_numbers")
    )
    assert entry is not None and "+13135550102" in entry.summary
    html = admin_client.get("/settings/").get_data(as_text=True)
    assert "+13135550101\n+13135550102" in html


def test_bad_staff_numbers_are_named_and_nothing_is_saved(admin_client):
    db.session.add(Setting(key=STAFF_NUMBERS_SETTING, value=["+13135550101"]))
    db.session.commit()
    response = admin_client.post(
        "/settings/staff-numbers", data={"staff_numbers": "313 555 0199\n<b>call me</b>\n12"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not phone numbers: &lt;b&gt;call me&lt;/b&gt;, 12. Nothing was saved." in html
    assert 'aria-invalid="true"' in html
    assert staff_numbers() == ["+13135550101"]


def test_staff_numbers_are_for_admins_to_change(operator_client):
    response = operator_client.post("/settings/staff-numbers", data={"staff_numbers": ""})
    assert response.status_code == 403
    html = operator_client.get("/settings/").get_data(as_text=True)
    assert 'id="settings-staff"' in html and "settings-staff-form" not in html


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
