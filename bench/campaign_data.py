"""What the campaign benchmarks share: a generated audience (contacts, Missive conversations and
labels, two zip segments), a personalized upload, and the targeting they measure.

Everything is written with COPY through psycopg, so the data is ready in seconds; the numbers
the benchmarks print come from the app's own services over it.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.common import log

ZIPS = [f"482{n:02d}" for n in range(30)]
LABELS = 4
SINCE_DAYS = 200  # "label since": applied in the last 200 days
TEMPLATE = "Hi {first name}, your polling place is {place}."
FIRST_NAMES = ["Maria", "James", "Aaliyah", "Omar", "Grace", "Dmitri", "Keisha", "Luis", "Mei"]
# A few names that need UCS-2 (every character of them is in the Basic Multilingual Plane).
NON_GSM_NAMES = ["Łucja", "Nguyễn", "Şebnem", "Zoë"]
PLACES = [
    "Central Library, 5201 Woodward Ave",
    "Northwest Activities Center",
    "Cass Tech High School, gym entrance on 2nd Ave",
    "St. Cecilia Gym",
    "Eastern Market Shed 5",
]


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_rows(conn: psycopg.Connection, table: str, columns: str, rows) -> int:
    """COPY rows (tuples; None is NULL) into `table` in PostgreSQL's text format."""
    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write(
            "\t".join(
                "\\N"
                if v is None
                else str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                for v in row
            )
            + "\n"
        )
        count += 1
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())
    return count


@dataclass(frozen=True)
class Audience:
    contacts: int
    segment_ids: tuple[int, int]
    label_ids: tuple[int, int, int]  # include L1, include L2, exclude L3
    since: str  # YYYY-MM-DD

    def targeting(self) -> dict[str, Any]:
        """Two include groups (segment AND label since) minus one exclude group (a label)."""
        (s1, s2), (l1, l2, l3) = self.segment_ids, self.label_ids
        return {
            "include": [
                [
                    {"type": "segment", "segment_id": s1},
                    {"type": "label", "label_id": l1, "since": self.since},
                ],
                [
                    {"type": "segment", "segment_id": s2},
                    {"type": "label", "label_id": l2, "since": self.since},
                ],
            ],
            "exclude": [[{"type": "label", "label_id": l3, "since": None}]],
        }


def generate_audience(url: str, contacts: int, seed: int = 11) -> Audience:
    """`contacts` contacts (5% unsubscribed, 2% excluded, 8% upload-only) over 30 zips; four in
    five have a Missive conversation with 1-3 of 4 labels (some removed, applied over the last
    year); segment 1 is zips 0-19, segment 2 zips 10-29 (they overlap: dedupe matters)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with psycopg.connect(conninfo(url)) as conn:

        def contact_row(i: int):
            roll = rng.random()
            created = now - timedelta(days=rng.randint(0, 900))
            return (
                f"+1313{2_000_000 + i}",
                f"Reader {i}",
                rng.choice(ZIPS),
                "{}",
                "t" if roll < 0.05 else "f",
                "t" if 0.05 <= roll < 0.07 else "f",
                "upload" if 0.07 <= roll < 0.15 else "conversation",
                created.isoformat(),
                created.isoformat(),
            )

        copy_rows(
            conn,
            "contacts",
            "phone, name, zip_code, attributes, unsubscribed, excluded, source, created_at, "
            "updated_at",
            (contact_row(i) for i in range(contacts)),
        )
        ids = [row[0] for row in conn.execute("SELECT id FROM contacts ORDER BY id")]
        copy_rows(
            conn,
            "missive_labels",
            "id, missive_id, name, created_at, updated_at",
            ((n, f"label-{n}", f"Label {n}", now, now) for n in range(1, LABELS + 1)),
        )
        with_conversation = [cid for cid in ids if rng.random() < 0.8]
        copy_rows(
            conn,
            "missive_conversations",
            "id, missive_id, contact_id, closed, created_at, updated_at",
            ((n, f"conv-{n}", cid, "f", now, now) for n, cid in enumerate(with_conversation, 1)),
        )
        links = []
        for conversation in range(1, len(with_conversation) + 1):
            for label in rng.sample(range(1, LABELS + 1), rng.randint(1, 3)):
                first = now - timedelta(days=rng.randint(0, 365))
                last = min(first + timedelta(days=rng.randint(0, 60)), now)
                removed = rng.random() < 0.1
                links.append(
                    (
                        conversation,
                        label,
                        first,
                        last,
                        "t" if removed else "f",
                        last if removed else None,
                    )
                )
        copy_rows(
            conn,
            "missive_conversation_labels",
            "conversation_id, label_id, first_applied_at, last_applied_at, removed, removed_at",
            links,
        )
        segment_ids = []
        for name, zips in (("Zips 0-19", ZIPS[:20]), ("Zips 10-29", ZIPS[10:])):
            rule = {"all": [{"type": "zip_code", "op": "in", "values": zips}]}
            segment_ids.append(
                conn.execute(
                    "INSERT INTO segments (name, description, rule, created_at, updated_at) "
                    "VALUES (%s, '', %s, now(), now()) RETURNING id",
                    (name, json.dumps(rule)),
                ).fetchone()[0]
            )
        conn.execute("SELECT setval('missive_labels_id_seq', %s)", (LABELS,))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    log(
        f"generated {contacts:,} contacts, {len(with_conversation):,} conversations, "
        f"{len(links):,} label links"
    )
    since = (now - timedelta(days=SINCE_DAYS)).date().isoformat()
    return Audience(contacts, (segment_ids[0], segment_ids[1]), (1, 2, 3), since)


def generate_personalized_upload(url: str, rows: int, seed: int = 12) -> int:
    """A done personalized upload of `rows` rows (columns phone, first name, place) and its
    contacts: 3% unsubscribed, 1% excluded, 30% upload-only; 1% of rows have no place (a merge
    issue: no text), 3% of names need UCS-2. Returns the upload's id."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with psycopg.connect(conninfo(url)) as conn:

        def contact_row(i: int):
            roll = rng.random()
            return (
                f"+1248{3_000_000 + i}",
                "{}",
                "t" if roll < 0.03 else "f",
                "t" if 0.03 <= roll < 0.04 else "f",
                "upload" if roll >= 0.7 else "conversation",
                now,
                now,
            )

        copy_rows(
            conn,
            "contacts",
            "phone, attributes, unsubscribed, excluded, source, created_at, updated_at",
            (contact_row(i) for i in range(rows)),
        )
        upload_id = conn.execute(
            "INSERT INTO uploads (filename, purpose, status, size_bytes, progress, total_rows, "
            "valid_rows, invalid_rows, duplicate_rows, unsubscribed_rows, created_count, "
            "updated_count, columns, phone_column, created_at, updated_at, started_at, "
            "finished_at) VALUES ('polling.csv', 'personalized', 'done', 0, %s, %s, %s, 0, 0, "
            "0, %s, 0, %s, 'phone', now(), now(), now(), now()) RETURNING id",
            (rows, rows, rows, rows, json.dumps(["phone", "first name", "place"])),
        ).fetchone()[0]
        ids = [
            row[0]
            for row in conn.execute("SELECT id FROM contacts ORDER BY id DESC LIMIT %s", (rows,))
        ]
        ids.reverse()

        def upload_row(n: int, cid: int):
            name = rng.choice(NON_GSM_NAMES if rng.random() < 0.03 else FIRST_NAMES)
            data = {"first name": name}
            if rng.random() >= 0.01:
                data["place"] = rng.choice(PLACES)
            return (upload_id, cid, n + 2, json.dumps(data, ensure_ascii=False))

        copy_rows(
            conn,
            "upload_contacts",
            "upload_id, contact_id, row_number, data",
            (upload_row(n, cid) for n, cid in enumerate(ids)),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    log(f"generated a personalized upload of {rows:,} rows")
    return upload_id
