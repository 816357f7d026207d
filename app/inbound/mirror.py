"""The Missive mirror (SPEC 2, 9): conversations linked to contacts, shared labels, and which
conversation carries which label now. Label-based segment conditions read these rows."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.inbound.services import get_or_create_contact
from app.inbound.sql import insert_ignore
from app.models import MissiveConversation, MissiveConversationLabel, MissiveLabel, utcnow


@dataclass(frozen=True)
class LabelData:
    missive_id: str
    name: str
    parent_missive_id: str | None = None


@dataclass(frozen=True)
class ConversationData:
    """What a webhook says about a conversation. `labels` is None when the payload did not list
    them (then the mirror's labels are left alone), else the complete current set."""

    missive_id: str
    web_url: str | None = None
    app_url: str | None = None
    labels: tuple[LabelData, ...] | None = None


@dataclass
class MirrorResult:
    conversation_id: int
    contact_id: int | None
    contact_created: bool = False
    labels_applied: int = 0
    labels_reapplied: int = 0
    labels_removed: int = 0

    @property
    def outcome(self) -> str:
        changes = [
            f"{n} label{'s' if n != 1 else ''} {what}"
            for n, what in (
                (self.labels_applied, "applied"),
                (self.labels_reapplied, "re-applied"),
                (self.labels_removed, "removed"),
            )
            if n
        ]
        return ", ".join(changes)


def sync_conversation(
    data: ConversationData, *, phone: str | None = None, closed: bool | None = None
) -> MirrorResult:
    """Upsert the conversation (linked to the contact with `phone`, created if new), set its
    closed flag if given, and bring its labels in line with `data.labels`. The caller commits."""
    now = utcnow()
    table = MissiveConversation.__table__
    insert_ignore(
        table,
        {"missive_id": data.missive_id, "closed": False, "created_at": now, "updated_at": now},
        ["missive_id"],
    )
    values: dict = {"updated_at": now}
    for name in ("web_url", "app_url"):
        if getattr(data, name):
            values[name] = getattr(data, name)
    result = MirrorResult(conversation_id=0, contact_id=None)
    if phone:
        result.contact_id, result.contact_created = get_or_create_contact(phone)
        values.update(contact_id=result.contact_id, phone=phone)
    if closed is not None:
        values["closed"] = closed
    row = db.session.execute(
        sa.update(table)
        .where(table.c.missive_id == data.missive_id)
        .values(**values)
        .returning(table.c.id, table.c.contact_id)
    ).one()
    result.conversation_id, result.contact_id = row.id, row.contact_id
    if data.labels is not None:
        sync_conversation_labels(result, data.labels)
    return result


def upsert_labels(labels: tuple[LabelData, ...]) -> dict[str, int]:
    """Our ids of these Missive shared labels, creating or renaming them as needed."""
    ids: dict[str, int] = {}
    table = MissiveLabel.__table__
    for label in labels:
        now = utcnow()
        new_id = insert_ignore(
            table,
            {
                "missive_id": label.missive_id,
                "name": label.name,
                "parent_missive_id": label.parent_missive_id,
                "created_at": now,
                "updated_at": now,
            },
            ["missive_id"],
        )
        if new_id is None:
            new_id = db.session.execute(
                sa.update(table)
                .where(table.c.missive_id == label.missive_id)
                .values(name=label.name, parent_missive_id=label.parent_missive_id)
                .returning(table.c.id)
            ).scalar_one()
        ids[label.missive_id] = new_id
    return ids


def sync_conversation_labels(result: MirrorResult, labels: tuple[LabelData, ...]) -> None:
    """Make the conversation's active labels exactly `labels`: a new one is applied, one that
    was removed and is back becomes active again with a new `last_applied_at` (the predecessor
    left it archived, so contacts silently fell out of segments), one no longer listed is
    marked removed. Each change is a conditional update, so a repeated webhook changes nothing."""
    wanted = set(upsert_labels(labels).values())
    link = MissiveConversationLabel.__table__
    now = utcnow()
    existing = {
        label_id: removed
        for label_id, removed in db.session.execute(
            sa.select(link.c.label_id, link.c.removed).where(
                link.c.conversation_id == result.conversation_id
            )
        )
    }
    for label_id in sorted(wanted - existing.keys()):
        added = insert_ignore(
            link,
            {
                "conversation_id": result.conversation_id,
                "label_id": label_id,
                "first_applied_at": now,
                "last_applied_at": now,
                "removed": False,
            },
            ["conversation_id", "label_id"],
        )
        result.labels_applied += added is not None
    back = [label_id for label_id, removed in existing.items() if removed and label_id in wanted]
    if back:
        result.labels_reapplied = db.session.execute(
            sa.update(link)
            .where(
                link.c.conversation_id == result.conversation_id,
                link.c.label_id.in_(back),
                link.c.removed.is_(True),
            )
            .values(removed=False, removed_at=None, last_applied_at=now)
        ).rowcount
    gone = [
        label_id for label_id, removed in existing.items() if not removed and label_id not in wanted
    ]
    if gone:
        result.labels_removed = db.session.execute(
            sa.update(link)
            .where(
                link.c.conversation_id == result.conversation_id,
                link.c.label_id.in_(gone),
                link.c.removed.is_(False),
            )
            .values(removed=True, removed_at=now)
        ).rowcount
