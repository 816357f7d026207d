"""Benchmark: validation + import of a generated CSV file (~2 % invalid, ~2 % duplicate rows).

    python -m bench.import_csv --rows 100000

Creates its own PostgreSQL database on DATABASE_URL's server (default: local PostgreSQL), runs
the real pipeline (create_upload, then the validate_upload and import_upload job functions, in
this process as a worker would run them), then, as a baseline, a plain COPY of the same file
into a bare table. Prints one JSON line: rows_per_s, peak_rss_mb, and the ratio to the COPY.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import base_env, bench_database, emit, log, make_app, redis_url

TARGET_ROWS_PER_S = 20_000
TARGET_PEAK_RSS_MB = 300
ZIPS = ["48201", "48202", "48207", "48208", "48209", "48210", "48216", "48226"]
NAMES = ["Ava", "Ben", "Chloé", "Dmitri", "Esra", "Farid", "Grace", "Hiro", "Imani", "José"]


def generate_csv(rows: int, seed: int = 7) -> bytes:
    """A contact file in mixed number formats; ~2 % invalid numbers, ~2 % repeated numbers."""
    rng = random.Random(seed)
    numbers = rng.sample(range(2_000_000, 9_999_999), rows)
    lines = ["phone,name,email,zip,neighborhood"]
    for i in range(rows):
        roll = rng.random()
        if roll < 0.02:
            phone = f"555-{i % 10_000:04d}"  # too short: invalid
        elif roll < 0.04 and i > 10:
            n = numbers[rng.randrange(i)]
            phone = f"+1313{n}"  # a number already in the file
        else:
            n = numbers[i]
            phone = rng.choice((f"(313) {n // 10_000}-{n % 10_000:04d}", f"313{n}", f"+1313{n}"))
        name = rng.choice(NAMES)
        email = f"{name.lower()}{i}@example.org" if i % 3 == 0 else ""
        hood = rng.choice(["Midtown", "Corktown", "Southwest", ""])
        lines.append(f"{phone},{name},{email},{rng.choice(ZIPS)},{hood}")
    return ("\n".join(lines) + "\n").encode()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_pipeline(app, content: bytes) -> dict:
    from app.extensions import db
    from app.jobs.imports import import_upload, validate_upload
    from app.models import Upload
    from app.uploads.services import create_upload, start_import

    with app.app_context():
        started = time.perf_counter()
        upload = create_upload("bench.csv", content, user=None)
        db.session.commit()
        upload_id = upload.id
        db.session.remove()
        accepted = time.perf_counter()
        validate_upload(upload_id)
        db.session.remove()
        validated = time.perf_counter()
        start_import(db.session.get(Upload, upload_id), user=None)
        db.session.commit()
        db.session.remove()
        import_upload(upload_id)
        finished = time.perf_counter()
        db.session.remove()
        upload = db.session.get(Upload, upload_id)
        result = {
            "seconds": finished - started,
            "accept_s": round(accepted - started, 3),
            "validate_s": round(validated - accepted, 3),
            "import_s": round(finished - validated, 3),
            "status": str(upload.status),
            "valid": upload.valid_rows,
            "invalid": upload.invalid_rows,
            "duplicates": upload.duplicate_rows,
            "created": upload.created_count,
        }
        db.session.remove()
    return result


def copy_baseline(url: str, content: bytes) -> float:
    """Seconds for PostgreSQL to COPY the same file into a bare table (no checks at all)."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "CREATE TABLE copy_baseline (phone text, name text, email text, zip text, hood text)"
        )
        started = time.perf_counter()
        with conn.cursor().copy("COPY copy_baseline FROM STDIN (FORMAT csv, HEADER true)") as copy:
            copy.write(content)
        conn.commit()
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", default="bench_import_csv")
    args = parser.parse_args(argv)

    content = generate_csv(args.rows)
    log(f"generated {args.rows:,} rows ({len(content) / 1e6:.1f} MB)")
    with bench_database(args.database) as url:
        env = base_env(url, redis_url(10), UPLOAD_MAX_ROWS=max(args.rows, 200_000))
        app = make_app(env)
        result = run_pipeline(app, content)
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()
        baseline = copy_baseline(url, content)
        with sa.create_engine(url).connect() as conn:
            contacts = conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar_one()
            links = conn.execute(sa.text("SELECT count(*) FROM upload_contacts")).scalar_one()
    rows_per_s = args.rows / result.pop("seconds")
    copy_rows_per_s = args.rows / baseline
    emit(
        {
            "bench": "import_csv",
            "rows": args.rows,
            "rows_per_s": round(rows_per_s),
            "peak_rss_mb": peak_rss_mb(),
            "copy_rows_per_s": round(copy_rows_per_s),
            "ratio_to_copy": round(rows_per_s / copy_rows_per_s, 3),
            **result,
            "contacts": contacts,
            "upload_contacts": links,
            "target_rows_per_s": TARGET_ROWS_PER_S,
            "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
            "ok": rows_per_s >= TARGET_ROWS_PER_S and peak_rss_mb() <= TARGET_PEAK_RSS_MB,
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
