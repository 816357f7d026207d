"""Starting a campaign: from "due" to every outbound row committed and sending enqueued.

    python -m bench.start_campaign --rows 100000 --kind personalized
    python -m bench.start_campaign --contacts 200000 --kind segments

The tick's real path for a scheduled campaign whose run time has passed (`run_due_campaigns`:
the claim, the recipients with eligibility, personalized texts rendered from each row's merge
fields or the segments-and-labels targeting compiled to SQL, the shared set-based outbound
insert with SMS segments per text, the first figures, the audit row, one commit) and then
`enqueue_sending`, against a baseline measured in the same run: one hand-written
`INSERT … SELECT` writing the same rows with the same bodies (rendered in SQL by
concatenation). The two row sets are compared (contact, body, SMS segments) and must be equal.

*personalized*: an upload of `--rows` rows (phone, first name, place; some contacts
unsubscribed or excluded, some rows without a place) and the template
`Hi {first name}, your polling place is {place}.` *segments*: `--contacts` contacts, two include
groups (segment AND label since) minus one exclude group (a label).

Each run starts a fresh campaign into an empty outbound table, then the baseline runs into an
empty table too; the medians of `--runs` runs are printed, ratio = ours / baseline. The baseline
runs with the server's settings: for segments PostgreSQL JIT-compiles its INSERT … SELECT, which
the app's recipients query avoids (services._without_jit).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from redis import Redis

from bench.campaign_data import (
    TEMPLATE,
    ZIPS,
    Audience,
    generate_audience,
    generate_personalized_upload,
)
from bench.common import base_env, bench_database, emit, log, make_app, redis_url

TARGET_SECONDS = 2.0
TARGET_RATIO = 2.0
SEGMENT_BODY = "Tonight: the council votes on the budget. Reply to ask us anything."

# SMS segments in SQL, exact for this data: printable ASCII here is all in GSM-7's basic table
# (the data has no extension characters), anything else needs UCS-2 and is in the BMP.
SQL_SEGMENTS = (
    "CASE WHEN r.body ~ '^[ -~]*$' "
    "THEN CASE WHEN length(r.body) <= 160 THEN 1 ELSE CAST(ceil(length(r.body) / 153.0) AS int) END "
    "ELSE CASE WHEN length(r.body) <= 70 THEN 1 ELSE CAST(ceil(length(r.body) / 67.0) AS int) END "
    "END"
)
BASELINE_PERSONALIZED = (
    "INSERT INTO outbound_messages (campaign_id, contact_id, step, status, body, sms_segments, "
    "attempts, created_at, updated_at) "
    f"SELECT :c, r.contact_id, 'first', 'queued', r.body, {SQL_SEGMENTS}, 0, now(), now() "
    "FROM (SELECT u.contact_id, 'Hi ' || btrim(u.data->>'first name') || "
    "', your polling place is ' || btrim(u.data->>'place') || '.' AS body "
    "FROM upload_contacts u JOIN contacts c ON c.id = u.contact_id "
    "WHERE u.upload_id = :u AND NOT c.unsubscribed AND NOT c.excluded "
    "AND btrim(u.data->>'first name') <> '' AND btrim(u.data->>'place') <> '') AS r"
)
LABELLED = (
    "SELECT 1 FROM missive_conversations mc JOIN missive_conversation_labels l "
    "ON l.conversation_id = mc.id WHERE mc.contact_id = c.id AND l.label_id = {label} "
    "AND NOT l.removed"
)
TARGETED = (
    "FROM contacts c WHERE NOT c.unsubscribed AND NOT c.excluded AND ("
    f"(c.zip_code IN :zips1 AND EXISTS ({LABELLED.format(label=':l1')} "
    "AND l.last_applied_at >= :since)) OR "
    f"(c.zip_code IN :zips2 AND EXISTS ({LABELLED.format(label=':l2')} "
    "AND l.last_applied_at >= :since))) "
    f"AND NOT EXISTS ({LABELLED.format(label=':l3')})"
)
BASELINE_SEGMENTS = (
    "INSERT INTO outbound_messages (campaign_id, contact_id, step, status, body, sms_segments, "
    "attempts, created_at, updated_at) "
    f"SELECT :c, c.id, 'first', 'queued', :body, 1, 0, now(), now() {TARGETED}"
)


def targeted_params(audience: Audience, zone: str) -> dict:
    """The baseline's parameters for the audience's targeting (zips of its two segments)."""
    since = datetime.combine(date.fromisoformat(audience.since), clock_time(0), ZoneInfo(zone))
    l1, l2, l3 = audience.label_ids
    return {
        "zips1": tuple(ZIPS[:20]),
        "zips2": tuple(ZIPS[10:]),
        "l1": l1,
        "l2": l2,
        "l3": l3,
        "since": since,
    }


def targeted_text(sql: str) -> sa.TextClause:
    return sa.text(sql).bindparams(
        sa.bindparam("zips1", expanding=True), sa.bindparam("zips2", expanding=True)
    )


def new_campaign(app, kind: str, *, upload_id: int | None, audience: Audience | None) -> int:
    """A campaign, scheduled a minute ago (due), committed."""
    from app.extensions import db
    from app.models import Campaign, CampaignStatus, CampaignTarget, utcnow

    with app.app_context():
        if kind == "personalized":
            campaign = Campaign(
                title="Polling places",
                first_message=TEMPLATE,
                target_kind=CampaignTarget.PERSONALIZED,
                upload_id=upload_id,
            )
        else:
            campaign = Campaign(
                title="Council budget",
                first_message=SEGMENT_BODY,
                target_kind=CampaignTarget.SEGMENTS,
                targeting=audience.targeting(),
            )
        campaign.status = CampaignStatus.SCHEDULED
        campaign.run_at = utcnow() - timedelta(minutes=1)
        db.session.add(campaign)
        db.session.commit()
        campaign_id = campaign.id
        db.session.remove()
        return campaign_id


def run_ours(app, campaign_id: int) -> tuple[float, int]:
    from app.campaigns.services import run_due_campaigns
    from app.extensions import db
    from app.jobs.sending import enqueue_sending
    from app.models import Campaign

    with app.app_context():
        started = time.perf_counter()
        result = run_due_campaigns(zone=app.config["APP_TIMEZONE"], catch_up_minutes=60)
        enqueued = enqueue_sending(app)
        seconds = time.perf_counter() - started
        assert result.get("campaigns_started") == [campaign_id], result
        recipients = db.session.get(Campaign, campaign_id).actual_recipients
        db.session.remove()
    log(f"ours: {recipients:,} rows, {enqueued} drain jobs enqueued in {seconds:.3f} s")
    return seconds, recipients


def keep_and_empty(app, campaign_id: int) -> None:
    """Keep what ours wrote (untimed) and empty the outbound table for the baseline."""
    with app.app_context():
        from app.extensions import db

        db.session.execute(sa.text("DROP TABLE IF EXISTS bench_expected"))
        db.session.execute(
            sa.text(
                "CREATE TABLE bench_expected AS SELECT contact_id, body, sms_segments "
                "FROM outbound_messages WHERE campaign_id = :c"
            ),
            {"c": campaign_id},
        )
        db.session.execute(sa.text("TRUNCATE outbound_messages CASCADE"))
        db.session.commit()
        db.session.remove()


def run_baseline(app, kind: str, *, upload_id: int | None, audience: Audience | None) -> float:
    from app.extensions import db

    with app.app_context():
        other = db.session.execute(
            sa.text(
                "INSERT INTO campaigns (title, first_message, delay_seconds, status, target_kind, "
                "targeting, missive_label_ids, label_attempts, created_at, updated_at) "
                "VALUES ('baseline', 'baseline', 0, 'sent', 'segments', '{}', '[]', 0, now(), "
                "now()) RETURNING id"
            )
        ).scalar_one()
        db.session.commit()
        if kind == "personalized":
            statement, params = sa.text(BASELINE_PERSONALIZED), {"c": other, "u": upload_id}
        else:
            statement = targeted_text(BASELINE_SEGMENTS)
            params = {
                "c": other,
                "body": SEGMENT_BODY,
                **targeted_params(audience, app.config["APP_TIMEZONE"]),
            }
        started = time.perf_counter()
        db.session.execute(statement, params)
        db.session.commit()
        elapsed = time.perf_counter() - started
        differing = db.session.scalar(
            sa.text(
                "SELECT count(*) FROM ((SELECT contact_id, body, sms_segments FROM bench_expected "
                "EXCEPT SELECT contact_id, body, sms_segments FROM outbound_messages "
                "WHERE campaign_id = :c) UNION ALL (SELECT contact_id, body, sms_segments "
                "FROM outbound_messages WHERE campaign_id = :c EXCEPT SELECT contact_id, body, "
                "sms_segments FROM bench_expected)) AS d"
            ),
            {"c": other},
        )
        assert differing == 0, f"{differing} rows differ between ours and the baseline"
        db.session.execute(sa.text("TRUNCATE outbound_messages CASCADE"))
        db.session.execute(sa.text("DROP TABLE bench_expected"))
        db.session.commit()
        db.session.remove()
    log(f"baseline: {elapsed:.3f} s (same rows and bodies)")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("personalized", "segments"), default="personalized")
    parser.add_argument("--rows", type=int, default=100_000, help="personalized: upload rows")
    parser.add_argument("--contacts", type=int, default=200_000, help="segments: contacts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="bench_start_campaign")
    parser.add_argument("--redis-db", type=int, default=7)
    args = parser.parse_args(argv)
    redis = Redis.from_url(redis_url(args.redis_db))
    redis.flushdb()
    try:
        with bench_database(args.database) as url:
            app = make_app(base_env(url, redis_url(args.redis_db)))
            started = time.perf_counter()
            upload_id = audience = None
            if args.kind == "personalized":
                upload_id = generate_personalized_upload(url, args.rows)
            else:
                audience = generate_audience(url, args.contacts)
            log(f"data ready in {time.perf_counter() - started:.1f} s")
            ours, bases = [], []
            recipients = 0
            for _ in range(args.runs):
                campaign_id = new_campaign(app, args.kind, upload_id=upload_id, audience=audience)
                seconds, recipients = run_ours(app, campaign_id)
                ours.append(seconds)
                redis.flushdb()
                keep_and_empty(app, campaign_id)
                bases.append(run_baseline(app, args.kind, upload_id=upload_id, audience=audience))
            seconds, base = statistics.median(ours), statistics.median(bases)
            size = {"rows": args.rows} if args.kind == "personalized" else {}
            emit(
                {
                    "benchmark": "start_campaign",
                    "kind": args.kind,
                    **size,
                    "contacts": args.rows if args.kind == "personalized" else args.contacts,
                    "recipients": recipients,
                    "runs": args.runs,
                    "seconds": round(seconds, 3),
                    "baseline_seconds": round(base, 3),
                    "ratio": round(seconds / base, 2),
                    "target_seconds": TARGET_SECONDS,
                    "target_ratio": TARGET_RATIO,
                    "ok": seconds <= TARGET_SECONDS and seconds / base <= TARGET_RATIO,
                }
            )
    finally:
        redis.flushdb()


if __name__ == "__main__":
    main()
