"""Recording job runs: one row per periodic or maintenance job, with outcome, counts and error."""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import Any

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
