"""The work horse's stop request: SIGTERM sets it, jobs that can stop early (the drain job) read it."""

from __future__ import annotations

import signal
import threading

# One per process. RQ forks a fresh work horse per job, so a set flag never outlives its job.
stop_requested = threading.Event()


def _request_stop(signum: int, frame) -> None:
    # Later SIGTERMs are ignored first: the platform's and the worker's forwarded one land
    # together, and a second run of this handler interrupting the first inside Event.set()
    # would wait forever for the lock the first one holds.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop_requested.set()


def install_horse_handlers() -> None:
    """In a freshly forked work horse: SIGTERM asks the job to stop (instead of killing it
    mid-call), SIGINT is ignored as RQ does (Ctrl+C in a terminal reaches the whole group)."""
    stop_requested.clear()
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
