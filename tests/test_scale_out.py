"""Scale-out as the Procfile runs it: two web processes and three workers on one PostgreSQL and
one Redis send every message once at the one shared pace, see each other, and all stop cleanly
(exit 0, nothing left `sending`) on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.common import kill_tree
from tests.fakes.twilio import FakeTwilio
from tests.support import (
    ROOT,
    free_port,
    migrated_scratch_database,
    test_env,
    twilio_worker_settings,
)

pytestmark = pytest.mark.slow
RATE = 30
MESSAGES = 90


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            return command.strip()
    raise AssertionError(f"no {name} in the Procfile")


def start(command: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as out:
        return subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def healthz(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except OSError:
        return None


def wait_for(condition, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def scale_db() -> Iterator[str]:
    with migrated_scratch_database("scale") as url:
        yield url


def seed(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contacts (phone, attributes, unsubscribed, excluded, source, "
                "created_at, updated_at) SELECT '+1313555' || lpad(g::text, 4, '0'), '{}', "
                "false, false, 'conversation', now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": MESSAGES},
        )
    engine.dispose()


def statuses(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, count(*) FROM outbound_messages GROUP BY status")
        ).all()
    engine.dispose()
    return dict(rows)


def test_two_webs_and_three_workers_share_one_database_redis_and_pace(scale_db, tmp_path):
    from app import create_app
    from app.extensions import db
    from app.jobs.sending import enqueue_sending
    from app.models import Broadcast, BroadcastStatus
    from app.sending.outbound import create_outbound
    from tests.support import make_test_config

    seed(scale_db)
    with FakeTwilio(latency_ms=30, seed=9) as fake:
        env = test_env(
            DATABASE_URL=scale_db,
            **twilio_worker_settings(fake, SEND_RATE_MPS=str(RATE)),
            PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            WEB_CONCURRENCY="1",
        )
        ports = [free_port(), free_port()]
        processes: list[subprocess.Popen] = []
        try:
            for i, port in enumerate(ports):
                processes.append(
                    start(procfile_command("web"), {**env, "PORT": str(port)}, tmp_path / f"w{i}")
                )
            for i in range(3):
                processes.append(start(procfile_command("worker"), env, tmp_path / f"rq{i}"))
            # Both webs answer, and each sees the three workers through the one Redis.
            wait_for(
                lambda: all((h := healthz(p)) and h["workers"].get("alive") == 3 for p in ports),
                "both webs reporting three workers",
            )

            app = create_app(make_test_config(database_url=scale_db, QUIET_HOURS=None))
            with app.app_context():
                broadcast = Broadcast(first_message="Scale check", status=BroadcastStatus.SENDING)
                db.session.add(broadcast)
                db.session.flush()
                ids = db.session.scalars(sa.text("SELECT id FROM contacts")).all()
                create_outbound(broadcast, ids, "Scale check")
                db.session.commit()
                enqueue_sending(app)
                db.session.remove()
                db.engine.dispose()
            wait_for(lambda: statuses(scale_db) == {"sent": MESSAGES}, "every message sent")

            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)  # each process group, as a platform does
            codes = [process.wait(timeout=30) for process in processes]
        finally:
            for process in processes:
                kill_tree(process)
        logs = "\n".join(path.read_text()[-1500:] for path in sorted(tmp_path.iterdir()))
        assert codes == [0] * 5, logs
        stats = fake.stats()
        assert stats["accepted"] == MESSAGES and stats["duplicates"] == 0
        stamps = sorted(r["date_created"].timestamp() for r in fake.messages())
        # Three workers, one pace: 89 gaps at RATE a second, never much faster.
        assert stamps[-1] - stamps[0] >= (MESSAGES - 1) / RATE * 0.95
    assert statuses(scale_db) == {"sent": MESSAGES}
