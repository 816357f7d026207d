"""The command line's operations tools: `check-message ID_OR_SID` (our row beside Twilio's status,
fetched from the fake Twilio through the real gateway, then applied) and `maintenance list|run`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs.schedule import PERIODIC_JOBS
from app.models import JobOutcome, JobRun, MessageStatus, OutboundMessage
from tests.factories import OutboundMessageFactory
from tests.fakes.twilio import FakeTwilio

FROM = "+13135559999"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(seed=5) as server:
        yield server


@pytest.fixture
def twilio_settings(fake) -> dict:
    return {
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": FROM,
        "TWILIO_API_BASE_URL": fake.url,
        "PUBLIC_BASE_URL": "https://broadcaster.example.org",
    }


@pytest.fixture
def twilio_app(make_app, twilio_settings):
    return make_app(TRANSPORT="twilio", **twilio_settings)


def invoke(app, *args: str):
    # Inside the app's own context: a command uses the current app when one is pushed.
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def held(fake: FakeTwilio, status: str, error_code: int | None = None, **fields):
    """A `sent` Twilio row whose SID the fake holds with `status`."""
    message = OutboundMessageFactory(sent=True, **fields)
    message.provider_sid = fake.add_message(message.contact.phone, message.body, status, error_code)
    db.session.commit()
    return message


def fresh(message: OutboundMessage) -> OutboundMessage:
    db.session.expire_all()
    return db.session.get(OutboundMessage, message.id)


def test_check_message_shows_both_sides_and_applies_a_late_delivered(twilio_app, fake):
    message = held(fake, "delivered")
    result = invoke(twilio_app, "check-message", str(message.id))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ours", "Twilio", "now"]
    status_line = next(line for line in lines if line.startswith("provider status"))
    assert status_line.split()[-2:] == ["sent", "delivered"]  # ours, then Twilio's
    assert any(line.startswith("contact") and message.contact.phone in line for line in lines)
    assert any(line.startswith("step") and line.split()[-1] == "first" for line in lines)
    assert "Applied: status sent → delivered, provider status sent → delivered." in result.output
    row = fresh(message)
    assert row.status == MessageStatus.DELIVERED and row.provider_status == "delivered"
    assert fake.stats()["fetches"] == 1

    # By its SID this time: nothing left to change.
    again = invoke(twilio_app, "check-message", message.provider_sid)
    assert again.exit_code == 0, again.output
    assert "Nothing to change" in again.output


def test_check_message_stores_a_carrier_failure_with_its_code(twilio_app, fake):
    message = held(fake, "undelivered", 30003)
    result = invoke(twilio_app, "check-message", str(message.id))
    assert result.exit_code == 0, result.output
    error_line = next(line for line in result.output.splitlines() if line.startswith("error"))
    assert error_line.split()[-1] == "30003"
    row = fresh(message)
    assert row.status == MessageStatus.UNDELIVERED and row.error_code == "30003"


def test_check_message_keeps_an_unknown_provider_status_without_crashing(twilio_app, fake):
    message = held(fake, "carrier_pondering")
    result = invoke(twilio_app, "check-message", str(message.id))
    assert result.exit_code == 0, result.output
    row = fresh(message)
    assert row.status == MessageStatus.SENT and row.provider_status == "carrier_pondering"


@pytest.mark.parametrize("key", ["999999", "99999999999999999999999", "SMnope"])
def test_check_message_refuses_an_unknown_id_or_sid(twilio_app, key):
    result = invoke(twilio_app, "check-message", key)
    assert result.exit_code == 1
    assert f"No outbound message has the {'SID' if key.startswith('SM') else 'id'}" in (
        result.output
    )


def test_check_message_says_what_cannot_be_checked(twilio_app, make_app, fake):
    simulated = OutboundMessageFactory(sent=True, transport="simulator")
    no_sid = OutboundMessageFactory(status=MessageStatus.UNKNOWN, transport="twilio")
    unknown_to_twilio = OutboundMessageFactory(sent=True, provider_sid="SM" + "0" * 32)
    db.session.commit()

    result = invoke(twilio_app, "check-message", str(simulated.id))
    assert result.exit_code == 0
    assert "Not checked with Twilio: It was simulated" in result.output
    result = invoke(twilio_app, "check-message", str(no_sid.id))
    assert result.exit_code == 0
    assert "It has no Twilio SID" in result.output and "cannot be asked" in result.output
    result = invoke(twilio_app, "check-message", str(unknown_to_twilio.id))
    assert result.exit_code == 0
    assert f"Twilio has no message with the SID {unknown_to_twilio.provider_sid}" in result.output
    assert fresh(no_sid).status == MessageStatus.UNKNOWN


def test_check_message_exits_non_zero_when_twilio_does_not_answer(make_app, twilio_settings):
    app = make_app(
        TRANSPORT="twilio",
        **{**twilio_settings, "TWILIO_API_BASE_URL": "http://127.0.0.1:1"},
        PROVIDER_CONNECT_TIMEOUT=0.5,
    )
    message = OutboundMessageFactory(sent=True)
    db.session.commit()
    result = invoke(app, "check-message", str(message.id))
    assert result.exit_code == 1
    assert "Not checked with Twilio: Twilio did not answer" in result.output


def test_check_message_of_a_missive_sent_message_uses_its_twilio_sid(
    make_app, twilio_settings, fake
):
    app = make_app(TRANSPORT="missive", MISSIVE_FROM_NUMBER=FROM, **twilio_settings)
    message = OutboundMessageFactory(
        sent=True, transport="missive", provider_sid="missive-message-1"
    )
    db.session.commit()
    result = invoke(app, "check-message", str(message.id))
    assert "no Twilio SID has been found for it yet" in result.output

    message.twilio_sid = fake.add_message(message.contact.phone, message.body, "delivered")
    db.session.commit()
    result = invoke(app, "check-message", message.twilio_sid)
    assert result.exit_code == 0, result.output
    assert "Applied: status sent → delivered" in result.output
    row = fresh(message)
    assert row.status == MessageStatus.DELIVERED and row.provider_sid == "missive-message-1"


def test_maintenance_list_names_every_job_with_its_schedule_and_last_run(app):
    db.session.add(
        JobRun(name="retention", outcome=JobOutcome.SUCCESS, counts={"job_runs_deleted": 12})
    )
    db.session.commit()
    result = invoke(app, "maintenance", "list")
    assert result.exit_code == 0, result.output
    lines = dict(line.split("\t", 1) for line in result.output.splitlines())
    assert set(lines) == {job.id for job in PERIODIC_JOBS}
    assert lines["tick"].startswith("Every minute\t")
    assert "Every day at" in lines["retention"] and "(America/Detroit)" in lines["retention"]
    assert lines["retention"].endswith("last run: success just now: 12 job runs deleted")
    assert lines["undeliverable"].endswith("last run: never run")


def test_maintenance_run_runs_a_job_here_and_prints_its_counts(app):
    result = invoke(app, "maintenance", "run", "retention")
    assert result.exit_code == 0, result.output
    run = db.session.scalars(sa.select(JobRun).where(JobRun.name == "retention")).one()
    assert run.outcome == JobOutcome.SUCCESS
    assert "retention: success in " in result.output and f"(job run {run.id})" in result.output
    assert result.output.rstrip().endswith("nothing to do")


def test_every_periodic_job_runs_from_the_command_line_under_its_recorded_name(app):
    """What the System page and `maintenance list` look up: each job's run is found by the
    name it records (a job recording another name would show 'never run' forever)."""
    for job in PERIODIC_JOBS:
        result = invoke(app, "maintenance", "run", job.id)
        assert result.exit_code == 0, (job.id, result.output)
        assert "recorded no job run" not in result.output, job.id
        run = db.session.scalars(
            sa.select(JobRun).where(JobRun.name == job.recorded_as).order_by(JobRun.id.desc())
        ).first()
        assert run is not None and run.outcome != JobOutcome.RUNNING, job.id


def test_maintenance_run_says_why_a_job_was_skipped(app):
    result = invoke(app, "maintenance", "run", "reconcile-statuses")
    assert result.exit_code == 0, result.output
    assert "reconcile-statuses: skipped" in result.output and "Skipped: " in result.output
    assert "nothing to do" not in result.output  # it did nothing because it was skipped
    # `maintenance list` says why too, not only that it was skipped.
    listed = dict(
        line.split("\t", 1) for line in invoke(app, "maintenance", "list").output.splitlines()
    )
    assert "last run: skipped just now" in listed["reconcile-statuses"]
    assert listed["reconcile-statuses"].endswith(
        "s): The simulator transport sends nothing to a provider, so there is no "
        "provider status to check."
    ), listed["reconcile-statuses"]


def test_maintenance_run_exits_non_zero_when_the_job_fails(make_app):
    # The Twilio transport without credentials: reconciliation cannot build its client.
    app = make_app(TRANSPORT="twilio", TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="")
    result = invoke(app, "maintenance", "run", "reconcile-statuses")
    assert result.exit_code == 1
    assert "reconcile-statuses failed: ValueError: TWILIO_ACCOUNT_SID" in result.output
    run = db.session.scalars(sa.select(JobRun).where(JobRun.name == "status reconciliation")).one()
    assert run.outcome == JobOutcome.FAILED


def test_maintenance_run_of_an_unknown_job_lists_the_valid_names(app):
    result = invoke(app, "maintenance", "run", "vacuum")
    assert result.exit_code == 1
    assert "There is no job called 'vacuum'" in result.output
    assert ", ".join(job.id for job in PERIODIC_JOBS) in result.output
