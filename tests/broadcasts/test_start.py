"""Starting a broadcast: recipients by ratio with deduplication and the filler, eligibility,
the frozen row and its clone, the tick's decisions, send now, and no double start."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import time, timedelta

import pytest
import sqlalchemy as sa

from app.broadcasts.services import (
    choose_recipients,
    run_due_broadcast,
    send_now,
    start_broadcast,
    upcoming_broadcast,
)
from app.extensions import db
from app.models import (
    AuditLog,
    Broadcast,
    BroadcastSegment,
    BroadcastStatus,
    ContactSource,
    OutboundMessage,
    ScheduleVersion,
    Step,
    utcnow,
)
from app.validation import ValidationError
from tests.factories import BroadcastFactory, ContactFactory, SegmentFactory

ZONE = "America/Detroit"


def zip_segment(*zips: str):
    return SegmentFactory(rule={"all": [{"type": "zip_code", "op": "in", "values": list(zips)}]})


def contacts_in(zip_code: str, n: int, **fields):
    return ContactFactory.create_batch(n, zip_code=zip_code, **fields)


def link(broadcast, segment, ratio, position, filler=False):
    broadcast.segment_links.append(
        BroadcastSegment(segment=segment, ratio=ratio, position=position, is_filler=filler)
    )


def test_each_segment_gets_its_share_after_deduplication_and_the_filler_tops_up(app):
    a = contacts_in("48201", 30)
    both = contacts_in("48202", 30)  # in segments A and B
    b_only = contacts_in("48203", 40)
    rest = contacts_in("48204", 100)
    seg_a = zip_segment("48201", "48202")
    seg_b = zip_segment("48202", "48203")
    filler = zip_segment("48204")
    broadcast = BroadcastFactory(batch_size=100)
    link(broadcast, seg_a, 40, 0)
    link(broadcast, seg_b, 30, 1)
    link(broadcast, filler, 0, 2, filler=True)
    db.session.flush()
    chosen = choose_recipients(broadcast, rng=random.Random(1))
    by_segment: dict[int, list[int]] = {}
    for cid, sid in zip(chosen.contact_ids, chosen.segment_ids, strict=True):
        by_segment.setdefault(sid, []).append(cid)
    assert len(chosen) == 100 and len(set(chosen.contact_ids)) == 100
    assert len(by_segment[seg_a.id]) == 40
    # B's 30 come from contacts A did not take (B still gets its full share).
    assert len(by_segment[seg_b.id]) == 30
    assert not set(by_segment[seg_b.id]) & set(by_segment[seg_a.id])
    assert len(by_segment[filler.id]) == 30
    ids_of = lambda cs: {c.id for c in cs}  # noqa: E731
    assert set(by_segment[seg_a.id]) <= ids_of(a) | ids_of(both)
    assert set(by_segment[seg_b.id]) <= ids_of(both) | ids_of(b_only)
    assert set(by_segment[filler.id]) <= ids_of(rest)


def test_without_a_filler_a_short_batch_is_simply_smaller(app):
    contacts_in("48201", 5)
    broadcast = BroadcastFactory(batch_size=100)
    link(broadcast, zip_segment("48201"), 50, 0)
    db.session.flush()
    assert len(choose_recipients(broadcast)) == 5


def test_ratios_round_down(app):
    contacts_in("48201", 50)
    broadcast = BroadcastFactory(batch_size=7)
    link(broadcast, zip_segment("48201"), 50, 0)  # 3.5 → 3
    db.session.flush()
    assert len(choose_recipients(broadcast)) == 3


def test_unsubscribed_excluded_and_upload_only_contacts_never_come_out(app):
    good = contacts_in("48201", 3)
    contacts_in("48201", 2, unsubscribed=True)
    contacts_in("48201", 2, excluded=True)
    contacts_in("48201", 2, source=ContactSource.UPLOAD)
    broadcast = BroadcastFactory(batch_size=100)
    link(broadcast, zip_segment("48201"), 100, 0)
    link(broadcast, SegmentFactory(rule={"all": []}), 0, 1, filler=True)  # matches everyone
    db.session.flush()
    assert set(choose_recipients(broadcast).contact_ids) == {c.id for c in good}


def test_starting_freezes_the_broadcast_creates_rows_and_the_next_upcoming_clone(app):
    db.session.add(ScheduleVersion(monday=time(9, 0), default_batch_size=50))
    contacts_in("48201", 10)
    segment = zip_segment("48201")
    broadcast = BroadcastFactory(batch_size=8, delay_seconds=900, second_message="Follow")
    link(broadcast, segment, 100, 0)
    db.session.commit()
    now = utcnow()
    started = start_broadcast(broadcast.id, now=now, zone=ZONE)
    assert started.status == BroadcastStatus.SENDING and started.started_at == now
    assert started.recipient_count == 8 and started.stats["recipients"] == 8
    rows = db.session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.broadcast_id == broadcast.id)
    ).all()
    assert len(rows) == 8
    assert {(r.step, r.status, r.body, r.segment_id) for r in rows} == {
        (Step.FIRST, "queued", broadcast.first_message, segment.id)
    }
    following = upcoming_broadcast()
    assert following.id != broadcast.id
    assert (following.first_message, following.second_message, following.delay_seconds) == (
        broadcast.first_message,
        "Follow",
        900,
    )
    assert following.batch_size == 8 and following.run_at_override is None
    assert [(x.segment_id, x.ratio) for x in following.segment_links] == [(segment.id, 100)]
    assert following.scheduled_for is not None and following.scheduled_for > now
    assert (
        following.scheduled_for.astimezone(__import__("zoneinfo").ZoneInfo(ZONE)).strftime(
            "%A %H:%M"
        )
        == "Monday 09:00"
    )
    assert db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "broadcast.start"))
    # Starting it again does nothing.
    assert start_broadcast(broadcast.id, zone=ZONE) is None


def test_the_tick_starts_a_due_broadcast_and_records_a_skipped_one(make_app):
    app = make_app(BROADCAST_CATCHUP_MINUTES=60)
    with app.app_context():
        contacts_in("48201", 3)
        broadcast = BroadcastFactory(batch_size=10)
        link(broadcast, zip_segment("48201"), 100, 0)
        broadcast.scheduled_for = utcnow() - timedelta(minutes=90)
        db.session.commit()
        result = run_due_broadcast(zone=app.config["APP_TIMEZONE"], catch_up_minutes=60)
        assert (
            "broadcast_skipped" in result and "missed by 90 minutes" in result["broadcast_skipped"]
        )
        db.session.refresh(broadcast)
        assert broadcast.status == BroadcastStatus.UPCOMING
        # A one-off run time overrides the weekly slot.
        broadcast.scheduled_for = utcnow() + timedelta(days=2)
        broadcast.run_at_override = utcnow() - timedelta(minutes=5)
        db.session.commit()
        result = run_due_broadcast(zone=app.config["APP_TIMEZONE"], catch_up_minutes=60)
        assert result["broadcast_started"] == broadcast.id and result["recipients"] == 3
        # The next one is not due for days: the tick waits.
        assert run_due_broadcast(zone=app.config["APP_TIMEZONE"], catch_up_minutes=60) == {
            "broadcast": "wait"
        } or run_due_broadcast(zone=app.config["APP_TIMEZONE"], catch_up_minutes=60)[
            "broadcast"
        ] in ("wait", "none")


def test_send_now_is_guarded_and_keeps_a_pending_one_off_time_for_the_next(app):
    from tests.factories import UserFactory

    user = UserFactory()
    contacts_in("48201", 2)
    broadcast = BroadcastFactory(batch_size=10)
    link(broadcast, zip_segment("48201"), 100, 0)
    broadcast.run_at_override = utcnow() + timedelta(minutes=45)
    db.session.commit()
    with pytest.raises(ValidationError, match="rescheduled to run in 4"):
        send_now(user=user, zone=app.config["APP_TIMEZONE"])
    later = utcnow() + timedelta(hours=5)
    broadcast.run_at_override = later
    db.session.commit()
    started = send_now(user=user, zone=app.config["APP_TIMEZONE"])
    assert started.id == broadcast.id and started.started_by_id == user.id
    following = upcoming_broadcast()
    assert following.run_at_override == later
    with pytest.raises(ValidationError, match="less than 2 hours ago"):
        send_now(user=user, zone=app.config["APP_TIMEZONE"])


@pytest.mark.slow
def test_two_processes_racing_to_start_start_it_once():
    from app import create_app
    from tests.support import (
        drop_database,
        make_test_config,
        recreate_database,
        run_flask,
        scratch_database,
        test_env,
    )

    url = recreate_database(scratch_database("race"))
    try:
        assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
        other = create_app(make_test_config(database_url=url))
        with other.app_context():
            from app.models import Contact, Segment

            db.session.add_all(
                Contact(phone=f"+1313555{i:04d}", zip_code="48201") for i in range(200)
            )
            segment = Segment(name="All", rule={"all": []})
            broadcast = Broadcast(
                first_message="Race", batch_size=200, status=BroadcastStatus.UPCOMING
            )
            broadcast.segment_links.append(BroadcastSegment(segment=segment, ratio=100, position=0))
            db.session.add_all([segment, broadcast])
            db.session.commit()
            broadcast_id = broadcast.id
            db.session.remove()
            db.engine.dispose()
        script = (
            "import sys; from app import create_app; from tests.support import make_test_config;"
            "from app.broadcasts.services import start_broadcast;"
            f"app = create_app(make_test_config(database_url={url!r}));"
            "ctx = app.app_context(); ctx.push();"
            f"b = start_broadcast({broadcast_id}, zone='America/Detroit');"
            "print('started' if b else 'already')"
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        assert outcomes == ["already", "already", "started"]
        with other.app_context():
            count = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage))
            upcoming = db.session.scalar(
                sa.select(sa.func.count()).where(Broadcast.status == BroadcastStatus.UPCOMING)
            )
            db.session.remove()
            db.engine.dispose()
        assert count == 200 and upcoming == 1
    finally:
        drop_database(scratch_database("race"))


def test_an_upcoming_broadcast_without_a_run_time_is_planned_from_the_schedule(app):
    db.session.add(ScheduleVersion(wednesday=time(18, 0), default_batch_size=100))
    broadcast = BroadcastFactory()
    db.session.commit()
    assert broadcast.scheduled_for is None
    assert (
        run_due_broadcast(zone=app.config["APP_TIMEZONE"], catch_up_minutes=60)["broadcast"]
        == "wait"
    )
    db.session.refresh(broadcast)
    local = broadcast.scheduled_for.astimezone(__import__("zoneinfo").ZoneInfo(ZONE))
    assert local.strftime("%A %H:%M") == "Wednesday 18:00" and broadcast.scheduled_for > utcnow()
