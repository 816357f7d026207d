"""Daily maintenance (SPEC 8a): each a plain RQ job listed in PERIODIC_JOBS, recorded in job runs
with its counts, safe to run twice or concurrently, and resumable."""

from __future__ import annotations
