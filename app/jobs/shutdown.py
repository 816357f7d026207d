"""The work horse's stop request: SIGTERM sets it, jobs that can stop early (the drain job) read it."""

from __future__ import annotations

import signal
import threading

# One per process. RQ forks a fresh work horse per job, so a set flag never outlives its job.
stop_requested = threading.Event()


def _request_stop(signum: int, frame) -> None:
    # Only an Event.set here: the handler runs between two bytecodes of the job's main thread.
    stop_requested.set()


def install_horse_handlers() -> None:
    """In a freshly forked work horse: SIGTERM asks the job to stop (instead of killing it
    mid-call), SIGINT is ignored as RQ does (Ctrl+C in a terminal reaches the whole group)."""
    stop_requested.clear()
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
