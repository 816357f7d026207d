"""Recording job runs: one row per periodic or maintenance job, with outcome, counts and error."""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import JobOutcome, JobRun, utcnow


class recorded_run:  # noqa: N801  (used as `with recorded_run("tick") as run:`)
    """Commit a `running` row first, then the outcome: a failure is recorded and re-raised."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.run_id: int | None = None
        self.counts: dict[str, Any] = {}
        self.outcome = JobOutcome.SUCCESS

    def __enter__(self) -> recorded_run:
        run = JobRun(name=self.name, outcome=JobOutcome.RUNNING)
        db.session.add(run)
        db.session.commit()
        self.run_id = run.id
        return self

    def progress(self, **counts: Any) -> None:
        """Publish the counts so far on the `running` row (the System page shows them live).

        It commits, so call it right after one of the job's own commits, never with half a batch
        pending.
        """
        self.counts.update(counts)
        if self.run_id is None:
            return
        db.session.execute(
            sa.update(JobRun).where(JobRun.id == self.run_id).values(counts=dict(self.counts))
        )
        db.session.commit()

    def skip(self, reason: str) -> None:
        self.outcome = JobOutcome.SKIPPED
        self.counts["skipped"] = reason

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            db.session.rollback()
        run = db.session.get(JobRun, self.run_id)
        if run is None:  # deleted under us (retention ran concurrently): nothing to record
            return
        run.finished_at = utcnow()
        run.counts = dict(self.counts)
        if exc is not None:
            run.outcome = JobOutcome.FAILED
            run.error = "".join(traceback.format_exception(exc_type, exc, tb))[-4000:]
        else:
            run.outcome = self.outcome
        db.session.commit()
