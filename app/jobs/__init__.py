"""RQ job functions and the fixed queue names. Importing a job module has no side effects."""

from __future__ import annotations

from flask import Flask
from rq import Queue

from app.extensions import get_redis

QUEUE_SENDING = "sending"
QUEUE_DEFAULT = "default"
QUEUE_MAINTENANCE = "maintenance"
# Workers listen in this order: sending first, maintenance last.
QUEUES = (QUEUE_SENDING, QUEUE_DEFAULT, QUEUE_MAINTENANCE)


def get_queue(app: Flask, name: str = QUEUE_DEFAULT) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    queues = app.extensions.setdefault("rq_queues", {})
    if name not in queues:
        queues[name] = Queue(name, connection=get_redis(app))
    return queues[name]
