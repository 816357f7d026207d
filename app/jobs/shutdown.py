"""The work horse's stop request: SIGTERM sets it, jobs that can stop early (the drain job) read it."""

from __future__ import annotations

import signal
import threading

from rq.exceptions import ShutDownImminentException

# One per process. RQ forks a fresh work horse per job, so a set flag never outlives its job.
stop_requested = threading.Event()
_grace_seconds = 25.0


def _request_stop(signum: int, frame) -> None:
    # Later SIGTERMs are ignored first: the platform's and the worker's forwarded one land
    # together, and a second run of this handler interrupting the first inside Event.set()
    # would wait forever for the lock the first one holds.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop_requested.set()
    # A job that does not read the flag (or cannot finish) is stopped before the platform's
    # SIGKILL, so its failure is recorded (job run, RQ's failed registry) and the worker exits
    # cleanly. This timer replaces the job's own timeout, which is longer.
    signal.signal(signal.SIGALRM, _stop_now)
    signal.setitimer(signal.ITIMER_REAL, _grace_seconds)


def _stop_now(signum: int, frame) -> None:
    raise ShutDownImminentException(
        f"stopped by a shutdown: still running {_grace_seconds:g} s after SIGTERM", {}
    )


def install_horse_handlers(grace_seconds: float = 25.0) -> None:
    """In a freshly forked work horse: SIGTERM asks the job to stop (instead of killing it
    mid-call) and, `grace_seconds` later, stops it with ShutDownImminentException; SIGINT is
    ignored as RQ does (Ctrl+C in a terminal reaches the whole group)."""
    global _grace_seconds
    _grace_seconds = grace_seconds
    stop_requested.clear()
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
