"""The live estimate of a campaign: how long the page waits for its recipient count.

    python -m bench.campaign_estimate --contacts 200000

Calls `app.campaigns.services.estimate`, the function the "New campaign" page calls while an
operator edits (the target checked, then the same recipients query the start runs, eligibility
included), for two include groups (segment AND label since) minus one exclude group, each call
in a fresh app context as a request would. The baseline, measured in the same run, is a
hand-written count of the same contacts with the server's settings (PostgreSQL JIT-compiles it,
as it would ours if we let it), and the same count with JIT off; all counts must agree. Prints
p95 and median of `--calls` calls of each, ratio = ours / baseline (p95), and the indexes ours'
plan uses (the plan goes to stderr).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import time

import sqlalchemy as sa

from bench.campaign_data import generate_audience
from bench.common import base_env, bench_database, emit, log, make_app, redis_url
from bench.start_campaign import TARGETED, targeted_params, targeted_text

TARGET_P95_MS = 200
BASELINE_COUNT = f"SELECT count(*) {TARGETED}"


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _explain(session, query) -> str:
    compiled = query.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {compiled}", compiled.params)
    plan = "\n".join(row[0] for row in cursor.fetchall())
    cursor.close()
    return plan


def measure(app, audience, calls: int) -> dict:
    from app.campaigns.services import CampaignInput, check_target, estimate, recipients_select
    from app.extensions import db
    from app.models import utcnow

    zone = app.config["APP_TIMEZONE"]
    values = CampaignInput(target_kind="segments", targeting=audience.targeting())
    statement = targeted_text(BASELINE_COUNT)
    params = targeted_params(audience, zone)

    def ours() -> int:
        with app.app_context():
            result = estimate(values, now=utcnow(), zone=zone)
            db.session.remove()
        assert result.error is None, result.error
        return result.recipients

    def baseline(jit: bool = True) -> int:
        with app.app_context():
            if not jit:
                db.session.execute(sa.text("SET LOCAL jit = off"))
            count = db.session.scalar(statement, params)
            db.session.remove()
        return count

    runs = {"ours": ours, "baseline": baseline, "baseline_no_jit": lambda: baseline(jit=False)}
    counts = {}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():  # warm the cache, the pool and the plans
        fn()
    for _ in range(calls):  # interleaved, so all see the same machine
        for name, fn in runs.items():
            started = time.perf_counter()
            counts[name] = fn()
            times[name].append((time.perf_counter() - started) * 1000)
    assert len(set(counts.values())) == 1, counts
    with app.app_context():
        checked = check_target(values)
        select = recipients_select(checked, now=utcnow(), zone=zone)
        plan = _explain(db.session, sa.select(sa.func.count()).select_from(select.subquery()))
        db.session.remove()
        db.engine.dispose()
    log(f"--- EXPLAIN estimate count ---\n{plan}")
    return {
        "recipients": counts["ours"],
        "calls": calls,
        "p95_ms": round(p95(times["ours"]), 1),
        "median_ms": round(statistics.median(times["ours"]), 1),
        "baseline_p95_ms": round(p95(times["baseline"]), 1),
        "baseline_median_ms": round(statistics.median(times["baseline"]), 1),
        "ratio": round(p95(times["ours"]) / p95(times["baseline"]), 2),
        "baseline_no_jit_p95_ms": round(p95(times["baseline_no_jit"]), 1),
        "plan_indexes": sorted(set(re.findall(r"Index (?:Only )?Scan (?:using|on) (\w+)", plan))),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--database", default="bench_campaign_estimate")
    parser.add_argument("--redis-db", type=int, default=7)
    args = parser.parse_args(argv)
    with bench_database(args.database) as url:
        started = time.perf_counter()
        audience = generate_audience(url, args.contacts)
        log(f"data ready in {time.perf_counter() - started:.1f} s")
        result = measure(make_app(base_env(url, redis_url(args.redis_db))), audience, args.calls)
    emit(
        {
            "benchmark": "campaign_estimate",
            "contacts": args.contacts,
            **result,
            "target_p95_ms": TARGET_P95_MS,
            "ok": result["p95_ms"] <= TARGET_P95_MS,
        }
    )


if __name__ == "__main__":
    main()
