"""A campaign's Missive label: found in the mirror or in Missive, else created under the parent
label, by a job after the commit; 429s and outages retried, refusals final; applied to every
conversation the campaign texts, including those texted before the label was ready."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from redis.exceptions import RedisError
from rq import Queue
from rq_scheduler import Scheduler
from sqlalchemy.orm import Session

from app.campaigns.services import label_preview
from app.extensions import db
from app.jobs import QUEUE_DEFAULT, get_queue
from app.jobs import campaigns as label_jobs
from app.jobs.campaigns import (
    BACKFILL_JOB,
    LABEL_JOB,
    LABEL_MAX_ATTEMPTS,
    apply_campaign_label,
    enqueue_campaign_label,
    enqueue_pending_labels,
    ensure_campaign_label,
    label_backfill,
)
from app.models import (
    Campaign,
    CampaignStatus,
    MessageStatus,
    MissiveLabel,
    OutboundMessage,
    utcnow,
)
from app.sending.engine import send_batch
from tests.factories import CampaignFactory, ContactFactory, OutboundMessageFactory
from tests.fakes.missive import DEFAULT_ORGANIZATION, FakeMissive
from tests.support import migrated_scratch_database, run_worker_py, test_env

FROM = "+13135558888"
ENGINE_SETTINGS = {"QUIET_HOURS": None, "SEND_RATE_MPS": 1000.0, "PROVIDER_READ_TIMEOUT": 1.0}


@pytest.fixture
def fake() -> Iterator[FakeMissive]:
    with FakeMissive(seed=11) as server:
        yield server


@pytest.fixture
def parent(fake) -> str:
    """The parent label campaigns' labels go under, made in Missive beforehand."""
    return fake.add_label("Campaigns")["id"]


def missive_settings(fake: FakeMissive, parent: str = "", **overrides) -> dict:
    return {
        **ENGINE_SETTINGS,
        "TRANSPORT": "missive",
        "MISSIVE_API_TOKEN": fake.token,
        "MISSIVE_API_BASE_URL": fake.url + "/v1",
        "MISSIVE_FROM_NUMBER": FROM,
        "MISSIVE_ORGANIZATION_ID": DEFAULT_ORGANIZATION,
        "MISSIVE_CAMPAIGN_PARENT_LABEL_ID": parent,
        **overrides,
    }


@pytest.fixture
def app(make_app, fake, parent) -> Iterator[Flask]:
    app = make_app(**missive_settings(fake, parent))
    with app.app_context():
        yield app


def labelled_campaign(name: str = "Town hall", **fields) -> Campaign:
    campaign = CampaignFactory(
        missive_label_name=name,
        label_state="pending",
        status=fields.pop("status", CampaignStatus.SCHEDULED),
        run_at=fields.pop("run_at", utcnow() + timedelta(minutes=30)),
        **fields,
    )
    db.session.commit()
    return campaign


def reloaded(campaign: Campaign) -> Campaign:
    db.session.expire_all()
    return db.session.get(Campaign, campaign.id)


def scheduled(redis_conn, func: str = LABEL_JOB) -> list[tuple[object, float]]:
    """Delayed jobs of `func`, with their delay in seconds from now."""
    scheduler = Scheduler(queue_name=QUEUE_DEFAULT, connection=redis_conn)
    now = utcnow().replace(tzinfo=None)
    return [
        (job, (at - now).total_seconds())
        for job, at in scheduler.get_jobs(with_times=True)
        if job.func_name == func
    ]


def queued(app: Flask, func: str = LABEL_JOB) -> list:
    return [job for job in get_queue(app, QUEUE_DEFAULT).get_jobs() if job.func_name == func]


def label_creations(fake: FakeMissive) -> int:
    return fake.stats()["labels"] - 1  # the parent label was there before


# -- finding or creating the label -------------------------------------------------------------
def test_a_label_mirrored_since_the_save_is_used_without_asking_missive(app, fake):
    campaign = labelled_campaign("Town Hall")
    db.session.add(MissiveLabel(missive_id="mirrored-1", name="town hall"))
    db.session.commit()
    before = fake.stats()["requests"]

    result = ensure_campaign_label(campaign.id)

    campaign = reloaded(campaign)
    assert result["ready"] == "mirrored-1"
    assert campaign.label_state == "ready" and campaign.missive_label_ids == ["mirrored-1"]
    assert campaign.label_error is None
    assert fake.stats()["requests"] == before


def test_a_label_in_missive_but_not_mirrored_is_reused_and_mirrored(app, fake, parent):
    existing = fake.add_label("TOWN HALL", parent=parent)
    campaign = labelled_campaign("Town hall")

    result = ensure_campaign_label(campaign.id)

    assert result == {"ready": existing["id"], "created": False, "backfill": False}
    assert reloaded(campaign).missive_label_ids == [existing["id"]]
    assert label_creations(fake) == 1  # only the one that was there
    mirrored = db.session.scalar(sa.select(MissiveLabel).where(MissiveLabel.name == "TOWN HALL"))
    assert mirrored.missive_id == existing["id"] and mirrored.parent_missive_id == parent
    # The next campaign with that name finds it locally.
    assert label_preview("town hall") == "exists"


def test_a_label_under_the_parent_is_preferred_to_one_elsewhere(app, fake, parent):
    fake.add_label("Town hall")  # at the top level
    under_parent = fake.add_label("Town hall", parent=parent)
    campaign = labelled_campaign("town hall")
    ensure_campaign_label(campaign.id)
    assert reloaded(campaign).missive_label_ids == [under_parent["id"]]


def test_a_label_beyond_missives_first_page_is_found_not_made_again(app, fake):
    for n in range(260):  # Missive lists 50 by default and at most 200 a page
        fake.add_label(f"Old campaign {n}")
    last = fake.add_label("Town hall")
    campaign = labelled_campaign("Town hall")
    ensure_campaign_label(campaign.id)
    assert reloaded(campaign).missive_label_ids == [last["id"]]
    assert fake.stats()["labels"] == 262


def test_a_new_label_is_created_in_missive_under_the_parent_label(app, fake, parent):
    fake.configure(strict_label_parents=True)
    campaign = labelled_campaign("Town hall 2026")

    result = ensure_campaign_label(campaign.id)

    [created] = [label for label in fake.labels() if label["name"] == "Town hall 2026"]
    assert result == {"ready": created["id"], "created": True, "backfill": False}
    assert created["parent"] == parent and created["organization"] == DEFAULT_ORGANIZATION
    assert created["name_with_parent_names"] == "Campaigns/Town hall 2026"
    campaign = reloaded(campaign)
    assert campaign.label_state == "ready" and campaign.missive_label_ids == [created["id"]]
    assert campaign.label_attempts == 0
    mirrored = db.session.scalar(
        sa.select(MissiveLabel).where(MissiveLabel.missive_id == created["id"])
    )
    assert mirrored.name == "Town hall 2026" and mirrored.parent_missive_id == parent


def test_running_the_job_twice_creates_one_label(app, fake, redis_conn):
    campaign = labelled_campaign("Town hall")
    first = ensure_campaign_label(campaign.id)
    assert ensure_campaign_label(campaign.id) == {"skipped": "label ready"}
    # Even when the first run's commit was lost after Missive made the label (a worker killed
    # at that moment): the second run lists Missive's labels before creating one.
    campaign = reloaded(campaign)
    campaign.label_state, campaign.missive_label_ids = "pending", []
    db.session.execute(sa.delete(MissiveLabel))
    db.session.commit()
    second = ensure_campaign_label(campaign.id)
    assert second["ready"] == first["ready"] and second["created"] is False
    assert label_creations(fake) == 1


def test_a_run_while_another_holds_the_campaigns_lock_comes_back_later(app, fake, redis_conn):
    campaign = labelled_campaign("Town hall")
    redis_conn.set(f"broadcaster:campaign-label:{campaign.id}:lock", "1", ex=60)
    assert ensure_campaign_label(campaign.id) == {"skipped": "another run is in progress"}
    [(_, delay)] = scheduled(redis_conn)
    assert 25 <= delay <= 31
    assert fake.stats()["requests"] == 0 and reloaded(campaign).label_state == "pending"


# -- when Missive says no, or nothing ----------------------------------------------------------
def test_a_429_is_shown_and_retried_when_retry_after_says_then_succeeds(app, fake, redis_conn):
    fake.configure(rate_429=1.0, retry_after_seconds=60)
    campaign = labelled_campaign("Town hall")

    result = ensure_campaign_label(campaign.id)

    campaign = reloaded(campaign)
    assert campaign.label_state == "failed" and campaign.label_attempts == 1
    assert campaign.label_error == "Missive is rate limiting us (429); retrying in 60 s."
    assert result["retry_in"] == 60
    [(job, delay)] = scheduled(redis_conn)
    assert list(job.args) == [campaign.id]
    assert 55 <= delay <= 61
    assert fake.stats()["rate_limited"] == 1  # not waited out inside the worker

    fake.configure(rate_429=0.0)
    ensure_campaign_label(campaign.id)  # what the scheduler runs a minute later
    campaign = reloaded(campaign)
    assert campaign.label_state == "ready" and campaign.label_error is None
    assert label_creations(fake) == 1


def test_an_outage_fails_the_label_for_now_and_it_is_retried_later(app, fake, redis_conn):
    fake.configure(outage_status=503)
    campaign = labelled_campaign("Town hall")

    ensure_campaign_label(campaign.id)

    campaign = reloaded(campaign)
    assert campaign.label_state == "failed" and campaign.label_attempts == 1
    assert campaign.label_error.startswith("Missive answered with an error (HTTP 503")
    assert campaign.label_error.endswith("retrying in 60 s.")
    [(_, delay)] = scheduled(redis_conn)
    assert 55 <= delay <= 61

    ensure_campaign_label(campaign.id)  # still down: the wait grows
    campaign = reloaded(campaign)
    assert campaign.label_attempts == 2 and campaign.label_error.endswith("retrying in 2 min.")

    fake.configure(outage_status=0)
    ensure_campaign_label(campaign.id)
    assert reloaded(campaign).label_state == "ready"


def test_missive_unreachable_fails_the_label_for_now_and_it_is_retried(
    make_app, fake, parent, redis_conn
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    app = make_app(
        **missive_settings(fake, parent, MISSIVE_API_BASE_URL=f"http://127.0.0.1:{closed_port}/v1")
    )
    with app.app_context():
        campaign = labelled_campaign("Town hall")
        ensure_campaign_label(campaign.id)
        campaign = reloaded(campaign)
        assert campaign.label_state == "failed"
        assert campaign.label_error.startswith("Missive could not be reached (could not connect")
        assert len(scheduled(redis_conn)) == 1


def test_a_refused_label_fails_for_good_and_is_not_retried(app, fake, redis_conn):
    fake.configure(strict_label_parents=True)
    app.config["MISSIVE_CAMPAIGN_PARENT_LABEL_ID"] = "no-such-label"  # a mistyped setting
    campaign = labelled_campaign("Town hall")

    ensure_campaign_label(campaign.id)

    campaign = reloaded(campaign)
    assert campaign.label_state == "failed" and campaign.label_attempts == LABEL_MAX_ATTEMPTS
    assert campaign.label_error == (
        "Missive refused the label “Town hall” (HTTP 422: shared_labels.parent: not found); "
        "it is not retried. The campaign sends without a label."
    )
    assert scheduled(redis_conn) == []
    requests = fake.stats()["requests"]
    assert ensure_campaign_label(campaign.id) == {"skipped": "given up"}
    campaign.status = CampaignStatus.SENDING
    db.session.commit()
    assert enqueue_pending_labels(app) == 0
    assert fake.stats()["requests"] == requests


def test_the_job_gives_up_after_its_last_attempt_saying_so(app, fake, redis_conn):
    fake.configure(outage_status=502)
    campaign = labelled_campaign("Town hall", label_attempts=LABEL_MAX_ATTEMPTS - 1)
    campaign.label_state = "failed"
    db.session.commit()

    ensure_campaign_label(campaign.id)

    campaign = reloaded(campaign)
    assert campaign.label_attempts == LABEL_MAX_ATTEMPTS
    assert campaign.label_error == (
        f"Gave up after {LABEL_MAX_ATTEMPTS} attempts: Missive answered with an error "
        "(HTTP 502: Service unavailable). The campaign sends without a label."
    )
    assert scheduled(redis_conn) == []


def test_without_the_missive_transport_the_label_says_plainly_it_is_not_applied(
    make_app, fake, redis_conn
):
    app = make_app(**ENGINE_SETTINGS)  # the simulator
    with app.app_context():
        campaign = labelled_campaign("Town hall")
        other = labelled_campaign("Gala")
        ensure_campaign_label(campaign.id)
        campaign = reloaded(campaign)
        assert campaign.label_state == "failed" and campaign.label_attempts == 0
        assert campaign.label_error == (
            "Not applied: Missive labels need the Missive transport, and this app sends through "
            "the simulator (TRANSPORT=simulator). The campaign sends without a label."
        )
        # The tick says the same of the others, without a job.
        assert enqueue_pending_labels(app) == 0
        assert reloaded(other).label_error == campaign.label_error
        assert fake.stats()["requests"] == 0 and scheduled(redis_conn) == []


def test_without_an_organization_labels_are_not_applied(make_app, fake, parent):
    app = make_app(**missive_settings(fake, parent, MISSIVE_ORGANIZATION_ID=""))
    with app.app_context():
        campaign = labelled_campaign("Town hall")
        ensure_campaign_label(campaign.id)
        assert reloaded(campaign).label_error.startswith(
            "Not applied: MISSIVE_ORGANIZATION_ID is not set"
        )


# -- enqueueing --------------------------------------------------------------------------------
def test_saving_enqueues_the_label_job_on_the_default_queue_only_when_needed(app):
    pending = labelled_campaign("Town hall")
    ready = CampaignFactory(missive_label_name="Gala", label_state="ready")
    unlabelled = CampaignFactory()
    db.session.commit()
    assert enqueue_campaign_label(pending.id) is True
    assert enqueue_campaign_label(ready.id) is False
    assert enqueue_campaign_label(unlabelled.id) is False
    [job] = queued(app)
    assert list(job.args) == [pending.id] and job.origin == QUEUE_DEFAULT
    assert job.func is ensure_campaign_label  # what a worker will import and run


def test_with_redis_down_saving_says_so_and_the_tick_enqueues_the_job_later(make_app, fake, parent):
    down = make_app(**missive_settings(fake, parent, REDIS_URL="redis://127.0.0.1:1/0"))
    with down.app_context():
        campaign = labelled_campaign("Town hall")
        with pytest.raises(RedisError):
            enqueue_campaign_label(campaign.id)
    up = make_app(**missive_settings(fake, parent))
    with up.app_context():
        assert enqueue_pending_labels(up) == 1
        assert [list(job.args) for job in queued(up)] == [[campaign.id]]


def test_the_tick_enqueues_lost_label_jobs_of_campaigns_due_soon_once(app, redis_conn):
    soon = labelled_campaign("Town hall")
    sending = labelled_campaign("Gala", status=CampaignStatus.SENDING, started_at=utcnow())
    retrying = labelled_campaign("Fair", label_attempts=2)
    retrying.label_state = "failed"
    later = labelled_campaign("Picnic", run_at=utcnow() + timedelta(days=3))
    draft = labelled_campaign("Quiz", status=CampaignStatus.DRAFT, run_at=None)
    db.session.commit()

    assert enqueue_pending_labels(app) == 3
    assert sorted(job.args[0] for job in queued(app)) == sorted([soon.id, sending.id, retrying.id])
    assert later.id and draft.id
    assert enqueue_pending_labels(app) == 0  # a minute later: already on their way
    redis_conn.flushdb()  # Redis lost: the next tick enqueues them again
    assert enqueue_pending_labels(app) == 3


def test_a_delayed_retry_keeps_the_tick_from_enqueueing_another(app, fake, redis_conn):
    fake.configure(rate_429=1.0, retry_after_seconds=60)
    campaign = labelled_campaign("Town hall", status=CampaignStatus.SENDING, started_at=utcnow())
    ensure_campaign_label(campaign.id)
    assert enqueue_pending_labels(app) == 0
    assert queued(app) == [] and len(scheduled(redis_conn)) == 1


# -- the label on the conversations ------------------------------------------------------------
def campaign_messages(campaign: Campaign, n: int) -> list[OutboundMessage]:
    rows = [
        OutboundMessageFactory(campaign=campaign, contact=contact)
        for contact in ContactFactory.create_batch(n)
    ]
    db.session.commit()
    return rows


def test_the_missive_transport_puts_the_campaigns_label_on_each_draft(app, fake):
    campaign = CampaignFactory(
        sending=True, missive_label_name="Town hall", label_state="ready", missive_label_ids=["L1"]
    )
    campaign_messages(campaign, 2)
    broadcast_message = OutboundMessageFactory()
    db.session.commit()

    assert send_batch(app).counts["accepted"] == 3

    drafts = {draft["to"]: draft for draft in fake.messages()}
    assert drafts.pop(broadcast_message.contact.phone)["add_shared_labels"] == []
    assert [draft["add_shared_labels"] for draft in drafts.values()] == [["L1"], ["L1"]]
    assert {draft["organization"] for draft in drafts.values()} == {DEFAULT_ORGANIZATION}
    labelled = [c for c in fake.conversations() if c["shared_labels"]]
    assert len(labelled) == 2 and all(c["shared_labels"][0]["id"] == "L1" for c in labelled)


def test_without_an_organization_a_mirrored_label_never_makes_missive_refuse_the_texts(
    make_app, fake
):
    app = make_app(**missive_settings(fake, MISSIVE_ORGANIZATION_ID=""))
    with app.app_context():
        campaign = CampaignFactory(
            sending=True, missive_label_name="Gala", label_state="ready", missive_label_ids=["L1"]
        )
        campaign_messages(campaign, 1)
        assert send_batch(app).counts["accepted"] == 1
        assert fake.messages()[0]["add_shared_labels"] == []


def test_conversations_texted_before_the_label_was_ready_are_labelled_afterwards(
    app, fake, redis_conn
):
    campaign = labelled_campaign("Town hall", status=CampaignStatus.SENDING, started_at=utcnow())
    campaign_messages(campaign, 3)
    assert send_batch(app).counts["accepted"] == 3  # the label is not ready: none on the drafts
    assert all(draft["add_shared_labels"] == [] for draft in fake.messages())

    result = ensure_campaign_label(campaign.id)

    assert result["backfill"] is True
    [(_, delay)] = scheduled(redis_conn, BACKFILL_JOB)
    assert 25 <= delay <= 31
    label_id = result["ready"]
    assert apply_campaign_label(campaign.id) == {
        "applied": 3,
        "done": True,
        "total": 3,
        "failed": 0,
    }
    posts = fake.posts()
    sent_to = {
        m.missive_conversation_id
        for m in db.session.scalars(
            sa.select(OutboundMessage).where(
                OutboundMessage.campaign_id == campaign.id, OutboundMessage.step == "first"
            )
        )
    }
    assert {post["conversation"] for post in posts} == sent_to and len(posts) == 3
    assert all(post["add_shared_labels"] == [label_id] for post in posts)
    assert all(post["username"] == "Broadcaster" for post in posts)
    assert "Town hall" in posts[0]["text"]
    assert all(
        [label["id"] for label in c["shared_labels"]] == [label_id] for c in fake.conversations()
    )
    assert label_backfill(campaign.id)["done"] is True
    # Done once: running it again posts nothing.
    assert apply_campaign_label(campaign.id) == {"skipped": "nothing to label"}
    assert len(fake.posts()) == 3

    # Texts claimed from now on carry the label on the draft itself.
    [later] = campaign_messages(campaign, 1)
    send_batch(app)
    assert fake.messages()[-1]["add_shared_labels"] == [label_id]
    assert later.id


def test_labelling_afterwards_resumes_where_it_stopped(app, fake, redis_conn, monkeypatch):
    monkeypatch.setattr(label_jobs, "BACKFILL_CHUNK", 2)
    campaign = labelled_campaign("Town hall", status=CampaignStatus.SENDING, started_at=utcnow())
    campaign_messages(campaign, 3)
    send_batch(app)
    ensure_campaign_label(campaign.id)

    fake.configure(rate_429=1.0, retry_after_seconds=20)
    assert apply_campaign_label(campaign.id) == {"applied": 0, "retry_in": 20}
    fake.configure(rate_429=0.0)
    assert apply_campaign_label(campaign.id) == {"applied": 2, "more": True}
    assert [job.func_name for job in queued(app, BACKFILL_JOB)] == [BACKFILL_JOB]
    progress = label_backfill(campaign.id)
    assert progress["applied"] == 2 and progress["retries"] == 1 and not progress["done"]
    assert apply_campaign_label(campaign.id)["done"] is True
    assert len({post["conversation"] for post in fake.posts()}) == len(fake.posts()) == 3


def test_labelling_afterwards_waits_for_texts_still_being_sent(app, fake, redis_conn):
    campaign = labelled_campaign("Town hall", status=CampaignStatus.SENDING, started_at=utcnow())
    [row] = campaign_messages(campaign, 1)
    db.session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.id == row.id)
        .values(status=MessageStatus.SENDING, claimed_at=utcnow())
    )
    db.session.commit()
    ensure_campaign_label(campaign.id)
    assert apply_campaign_label(campaign.id) == {"waiting_for": 1}
    assert fake.posts() == []
    assert len(scheduled(redis_conn, BACKFILL_JOB)) == 2  # the first one, and this wait


# -- a real worker -----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_real_worker_makes_the_label_enqueued_after_the_save(fake, parent, redis_conn):
    with migrated_scratch_database("labels") as url:
        engine = sa.create_engine(url)
        with Session(engine) as session:
            campaign = Campaign(
                first_message="Hello", missive_label_name="Town hall", label_state="pending"
            )
            session.add(campaign)
            session.commit()
            campaign_id = campaign.id
        Queue(QUEUE_DEFAULT, connection=redis_conn).enqueue(LABEL_JOB, campaign_id)
        env = test_env(
            DATABASE_URL=url,
            **{
                key: str(value)
                for key, value in missive_settings(fake, parent).items()
                if key.startswith(("TRANSPORT", "MISSIVE_"))
            },
        )
        worker = run_worker_py(["worker", "--burst"], env)
        assert worker.returncode == 0, worker.stderr
        with engine.connect() as conn:
            state, ids = conn.execute(
                sa.text("SELECT label_state, missive_label_ids FROM campaigns WHERE id = :id"),
                {"id": campaign_id},
            ).one()
        engine.dispose()
        [created] = [label for label in fake.labels() if label["name"] == "Town hall"]
        assert state == "ready" and created["parent"] == parent
        assert (ids if isinstance(ids, list) else json.loads(ids)) == [created["id"]]
