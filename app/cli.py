"""Command-line tools: `flask --app app users create|list`, `seed-demo`, `check-message ID_OR_SID`
and `maintenance list|run NAME`."""

from __future__ import annotations

import random
import sys
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

from app.audit.services import record_audit
from app.auth.services import create_user, find_user_by_email, list_users
from app.campaigns.services import CampaignInput, save_campaign
from app.extensions import db
from app.jobs.schedule import PERIODIC_JOBS
from app.models import (
    Broadcast,
    BroadcastSegment,
    BroadcastStatus,
    Campaign,
    Contact,
    ContactSource,
    JobOutcome,
    JobRun,
    OutboundMessage,
    Role,
    ScheduleVersion,
    Segment,
    User,
    utcnow,
)
from app.system.message_check import check_message, find_message
from app.system.periodic import (
    counts_in_words,
    duration_in_words,
    error_summary,
    job_by_id,
    job_function,
    periodic_job_statuses,
)
from app.validation import ValidationError

users_cli = AppGroup("users", help="Manage the people who may sign in.")
maintenance_cli = AppGroup("maintenance", help="The periodic and maintenance jobs.")

DEMO_ADMIN_EMAIL = "admin@example.org"
DEMO_ADMIN_PASSWORD = "broadcaster-demo"
DEMO_ZIPS = ["48201", "48202", "48207", "48208", "48209", "48210", "48216", "48226"]
DEMO_NAMES = ["Ava", "Ben", "Chloé", "Dmitri", "Esra", "Farid", "Grace", "Hiro", "Imani", "José"]


@users_cli.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.VIEWER.value,
    show_default=True,
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
@click.option(
    "--password",
    help="The password itself. Avoid it: the process list and shell history keep it.",
)
@click.option("--name", default="", help="Display name.")
def create_user_command(
    email: str, role: str, password_stdin: bool, password: str | None, name: str
) -> None:
    """Create a user who can sign in. The password (at least 10 characters) is asked for twice,
    hidden; scripts pipe it in with --password-stdin."""
    if password_stdin and password is not None:
        raise click.UsageError("Give the password one way: --password-stdin or --password.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, password, role, name)
    except ValidationError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    record_audit("user_create", actor="cli", obj=user, summary=f"Created {user.email} as {role}")
    db.session.commit()
    click.echo(f"Created {user.email} ({user.role}).")


@users_cli.command("list")
def list_users_command() -> None:
    """List every user with role, state and last sign-in."""
    users = list_users()
    if not users:
        click.echo(
            "No users yet. Create one with: flask --app app users create EMAIL --role admin "
            "(it asks for the password)"
        )
        return
    for user in users:
        state = "active" if user.active else "inactive"
        last = user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "never"
        click.echo(f"{user.email}\t{user.role}\t{state}\tlast sign-in: {last}")


@click.command("seed-demo")
@click.option("--contacts", "contact_count", default=300, show_default=True)
@click.option("--force", is_flag=True, help="Seed even in production mode.")
def seed_demo_command(contact_count: int, force: bool) -> None:
    """Demo data: an admin, contacts, two segments, a weekly schedule and an upcoming broadcast.

    Safe to run twice: whatever exists already is kept (the demo admin's password is reset).
    """
    if current_app.config["PRODUCTION"] and not force:
        raise click.ClickException(
            "This looks like production: seed-demo would add an admin with a published password. "
            "Use --force if you really mean it."
        )
    admin = find_user_by_email(DEMO_ADMIN_EMAIL)
    if admin is None:
        admin = create_user(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, Role.ADMIN, "Demo Admin")
    else:
        admin.set_password(DEMO_ADMIN_PASSWORD)
        admin.active = True

    rng = random.Random(1234)
    wanted = [f"+1313{rng.randint(2000000, 9999999)}" for _ in range(contact_count)]
    wanted[:2] = ["+13135550000", "+13135560000"]  # the simulator fails numbers ending in 0000
    existing = set(db.session.scalars(sa.select(Contact.phone).where(Contact.phone.in_(wanted))))
    now = utcnow()
    rows = [
        {
            "phone": phone,
            "name": f"{rng.choice(DEMO_NAMES)} {chr(65 + i % 26)}." if i % 4 else None,
            "zip_code": rng.choice(DEMO_ZIPS),
            "attributes": {"neighborhood": rng.choice(["Midtown", "Corktown", "Southwest"])},
            "source": ContactSource.CONVERSATION if i % 10 else ContactSource.UPLOAD,
            "unsubscribed": i % 37 == 0,
            "unsubscribed_at": now if i % 37 == 0 else None,
            "unsubscribe_reason": "replied STOP" if i % 37 == 0 else None,
            "created_at": now - timedelta(days=rng.randint(0, 400)),
            "updated_at": now,
        }
        for i, phone in enumerate(dict.fromkeys(wanted))
        if phone not in existing
    ]
    if rows:
        db.session.execute(sa.insert(Contact), rows)

    segments = {}
    for name, description, rule in (
        ("Everyone", "Every subscribed contact.", {"all": []}),
        (
            "Downtown & Midtown",
            "Contacts in the 48201 and 48226 zip codes.",
            {"all": [{"type": "zip_code", "op": "in", "values": ["48201", "48226"]}]},
        ),
    ):
        segment = db.session.scalar(sa.select(Segment).where(Segment.name == name))
        if segment is None:
            segment = Segment(name=name, description=description, rule=rule, created_by_id=admin.id)
            db.session.add(segment)
        segments[name] = segment
    db.session.flush()

    if db.session.scalar(sa.select(ScheduleVersion.id).limit(1)) is None:
        db.session.add(
            ScheduleVersion(
                tuesday=time(10, 0),
                thursday=time(17, 30),
                default_batch_size=200,
                created_by_id=admin.id,
            )
        )
    upcoming = db.session.scalar(
        sa.select(Broadcast).where(Broadcast.status == BroadcastStatus.UPCOMING)
    )
    if upcoming is None:
        upcoming = Broadcast(
            first_message=(
                "Good morning from the Detroit newsroom! This week: the bus route changes and "
                "where to vote. Reply with your questions."
            ),
            second_message="Did you see our note? Reply with any question and a reporter will answer.",
            delay_seconds=600,
            batch_size=200,
            status=BroadcastStatus.UPCOMING,
            segment_links=[
                BroadcastSegment(segment=segments["Downtown & Midtown"], ratio=40, position=0),
                BroadcastSegment(
                    segment=segments["Everyone"], ratio=60, is_filler=True, position=1
                ),
            ],
        )
        db.session.add(upcoming)
    campaign = _seed_demo_campaign(admin, segments["Downtown & Midtown"], now)
    record_audit("seed_demo", actor="cli", summary=f"Demo data: {len(rows)} new contacts")
    db.session.commit()

    total = db.session.scalar(sa.select(sa.func.count()).select_from(Contact))
    click.echo(
        f"Demo data ready: {total} contacts ({len(rows)} new), {len(segments)} segments, "
        f"an upcoming broadcast{', a scheduled campaign' if campaign else ''}."
    )
    click.echo(f"Sign in as {DEMO_ADMIN_EMAIL} with password {DEMO_ADMIN_PASSWORD}")


def _seed_demo_campaign(admin: User, segment: Segment, now: datetime) -> Campaign | None:
    """A scheduled campaign a week from now (10:00 local), unless the demo already has one."""
    if db.session.scalar(sa.select(Campaign.id).limit(1)) is not None:
        return None
    zone = current_app.config["APP_TIMEZONE"]
    day = (now + timedelta(days=7)).astimezone(ZoneInfo(zone)).date()
    run_at = datetime.combine(day, time(10, 0), tzinfo=ZoneInfo(zone))
    values = CampaignInput(
        title="Election day reminder",
        first_message=(
            "Polls are open 7 AM to 8 PM on Tuesday. Find your polling place at "
            "vote.example.org and reply with any question."
        ),
        second_message="Did you find your polling place? Reply and a reporter will help.",
        delay_seconds=1800,
        targeting={"include": [[{"type": "segment", "segment_id": segment.id}]], "exclude": []},
        run_at=run_at,
    )
    return save_campaign(None, values, schedule=True, user=admin, now=now, zone=zone)


def _when(value: datetime | None) -> str:
    """A stored time in the organisation's zone, e.g. `2026-12-01 09:14:05 EST`."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(current_app.config["APP_TIMEZONE"]))
    return local.strftime("%Y-%m-%d %H:%M:%S %Z")


def _message_lines(message: OutboundMessage) -> list[tuple[str, str]]:
    send = (
        f"broadcast {message.broadcast_id}"
        if message.broadcast_id
        else (f"campaign {message.campaign_id}")
    )
    return [
        ("our id", str(message.id)),
        ("send", send),
        ("contact", f"{message.contact.phone} (contact {message.contact_id})"),
        ("step", message.step.value),
        ("transport", message.transport or "—"),
        ("status", message.status.value),
        ("provider status", message.provider_status or "—"),
        ("provider SID", message.provider_sid or "—"),
        ("Twilio SID", message.twilio_sid or "—"),
        ("created", _when(message.created_at)),
        ("sent", _when(message.sent_at)),
        ("delivered", _when(message.delivered_at)),
        ("failed", _when(message.failed_at)),
        ("error", " ".join(filter(None, [message.error_code, message.error_message])) or "—"),
    ]


@click.command("check-message")
@click.argument("id_or_sid")
def check_message_command(id_or_sid: str) -> None:
    """Show one outbound message (by our id or its SID) beside the status Twilio holds for it
    now, and apply that status as a status callback would (it only ever moves forward)."""
    message = find_message(id_or_sid)
    if message is None:
        what = "id" if id_or_sid.strip().isdigit() else "SID"
        raise click.ClickException(
            f"No outbound message has the {what} {id_or_sid.strip()!r}. Give our message id "
            "(digits, as on the System page) or its SID (SM…)."
        )
    before = _message_lines(message)
    answer = check_message(current_app._get_current_object(), message)
    db.session.commit()
    db.session.refresh(message)
    after = dict(_message_lines(message))
    provider = {
        "provider status": answer.status or "—",
        "Twilio SID": answer.sid or "—",
        "error": answer.error_code or "—",
    }
    width = max(len(label) for label, _ in before)
    column = max(len(value) for _, value in before)
    click.echo(f"{'':{width}}  {'ours':{column}}  Twilio now")
    for label, value in before:
        theirs = provider.get(label, "") if answer.checked else ""
        click.echo(f"{label:{width}}  {value:{column}}  {theirs}".rstrip())
    if not answer.checked:
        click.echo(f"Not checked with Twilio: {answer.reason}")
        if answer.failed:
            raise SystemExit(1)
        return
    if answer.applied:
        click.echo(
            f"Applied: status {dict(before)['status']} → {after['status']}, provider status "
            f"{dict(before)['provider status']} → {after['provider status']}."
        )
    else:
        click.echo("Nothing to change: our row already has this status (or a later one).")


@maintenance_cli.command("list")
def maintenance_list_command() -> None:
    """Every periodic job: its name, its schedule in words and its last run."""
    app = current_app._get_current_object()
    statuses = periodic_job_statuses(app, utcnow(), ZoneInfo(app.config["APP_TIMEZONE"]))
    for status in statuses:
        run = status.running or status.last_run
        if run is None:
            last = "never run"
        else:
            last = f"{run.outcome.value} {status.ago(run.started_at)}"
            if run.duration_seconds is not None:
                last += f" (took {duration_in_words(run.duration_seconds)})"
            if run.outcome == JobOutcome.SKIPPED and run.counts.get("skipped"):
                last += f": {run.counts['skipped']}"
            words = counts_in_words(run.counts)
            if words:
                last += f": {words}"
            if run.error:
                last += f": {error_summary(run.error)}"
        click.echo(f"{status.job.id}\t{status.schedule}\tlast run: {last}")


@maintenance_cli.command("run")
@click.argument("name")
def maintenance_run_command(name: str) -> None:
    """Run one periodic job (as `maintenance list` names it) here, in the foreground, and print
    its counts. It is recorded in the job runs like a scheduled run; exits 1 when it fails."""
    job = job_by_id(name)
    if job is None:
        valid = ", ".join(j.id for j in PERIODIC_JOBS)
        raise click.ClickException(f"There is no job called {name!r}. The jobs are: {valid}.")
    function = job_function(job)
    click.echo(f"Running {job.id} ({job.description})…")
    started = utcnow()
    failure: Exception | None = None
    try:
        function()
    except Exception as exc:  # noqa: BLE001 (a command's boundary: report it, exit non-zero)
        db.session.rollback()
        failure = exc
    run = db.session.scalars(
        sa.select(JobRun)
        .where(JobRun.name == job.recorded_as, JobRun.started_at >= started)
        .order_by(JobRun.id.desc())
        .limit(1)
    ).first()
    if failure is not None:
        summary = error_summary(run.error) if run and run.error else repr(failure)
        raise click.ClickException(f"{job.id} failed: {summary}")
    if run is None:
        click.echo(f"{job.id} finished (it recorded no job run).")
        return
    took = duration_in_words(run.duration_seconds)
    click.echo(f"{job.id}: {run.outcome.value} in {took} (job run {run.id})")
    if run.outcome == JobOutcome.SKIPPED and run.counts.get("skipped"):
        click.echo(f"Skipped: {run.counts['skipped']}")
    words = counts_in_words(run.counts)
    if words or run.outcome != JobOutcome.SKIPPED:
        click.echo(words or "no counts")


def register_cli(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(check_message_command)
    app.cli.add_command(maintenance_cli)
