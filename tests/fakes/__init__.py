"""Fake Twilio and Missive HTTP servers, run by the real clients in tests and benchmarks."""

from __future__ import annotations

from typing import Any

# Imported lazily, so `python -m tests.fakes.twilio` does not import its own module twice.
_EXPORTS = {
    "FakeTwilio": "tests.fakes.twilio",
    "FakeMissive": "tests.fakes.missive",
    "FakeControl": "tests.fakes.server",
    "FakeProcess": "tests.fakes.server",
    "start_fake_process": "tests.fakes.server",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
