"""Maintenance posts to Missive conversations (SPEC 8a, missive transport): the note that closes
the conversation of a number found undeliverable, and the archive of conversations whose last two
broadcast messages failed.

Each conversation gets each note once. The mirror row (`missive_conversations`) remembers it: the
row is claimed with a conditional update and committed before Missive is asked, so a second or
concurrent run never posts again; a post that fails is released for the next run and counted
(one that fails for any other reason, Redis down say, is released too and fails the run).
A run killed between the claim and the post loses that one note rather than posting it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.integrations import ProviderError
from app.integrations.missive import MissiveClient
from app.models import (
    FAILED_STATUSES,
    AuditLog,
    Contact,
    ExcludeReason,
    MessageStatus,
    MissiveConversation,
    OutboundMessage,
)
from app.sending.transports import missive_client

# The messages that count as "the last ones": those handed to the provider (or refused by it).
# Pending, cancelled and skipped messages never reached the number and are left out.
ATTEMPTED = (
    MessageStatus.SENDING,
    MessageStatus.UNKNOWN,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
)
UNDELIVERABLE_NOTE_DAYS = 30  # numbers excluded as undeliverable this recently get the note
DOUBLE_FAILURE_RUN = 2
DOUBLE_FAILURE_DAYS = 7


def posts_unavailable(config: dict[str, Any], label_setting: str) -> str | None:
    """Why maintenance cannot post to Missive, in words for the job's counts; None when it can."""
    transport = config["TRANSPORT"]
    if transport != "missive":
        return f"posts to Missive need the missive transport (TRANSPORT={transport})"
    if not config["MISSIVE_API_TOKEN"]:
        return "MISSIVE_API_TOKEN is not set"
    if not config[label_setting]:
        return f"{label_setting} is not set"
    return None


@dataclass
class PostCounts:
    posted: int = 0
    failed: int = 0
    no_conversation: int = 0
    errors: list[str] = field(default_factory=list)

    def as_counts(self, prefix: str) -> dict[str, Any]:
        counts: dict[str, Any] = {
            f"{prefix}_posted": self.posted,
            f"{prefix}_failed": self.failed,
        }
        if self.no_conversation:
            counts[f"{prefix}_without_conversation"] = self.no_conversation
        if self.errors:
            counts[f"{prefix}_last_error"] = self.errors[-1]
        return counts


def _mirror(missive_id: str, contact_id: int | None, phone: str | None) -> None:
    """Make sure a mirror row exists for the conversation (our sends may know conversations the
    mirror never saw); never changes an existing one."""
    exists = db.session.scalar(
        sa.select(MissiveConversation.id).where(MissiveConversation.missive_id == missive_id)
    )
    if exists is None:
        with db.session.begin_nested():
            db.session.add(
                MissiveConversation(missive_id=missive_id, contact_id=contact_id, phone=phone)
            )
        db.session.flush()


def _claim(missive_id: str, column: sa.orm.InstrumentedAttribute, now: datetime) -> bool:
    claimed = db.session.execute(
        sa.update(MissiveConversation)
        .where(MissiveConversation.missive_id == missive_id, column.is_(None))
        .values({column.key: now})
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(claimed)


def _release(missive_id: str, column: sa.orm.InstrumentedAttribute) -> None:
    db.session.execute(
        sa.update(MissiveConversation)
        .where(MissiveConversation.missive_id == missive_id)
        .values({column.key: None})
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _post_once(  # noqa: PLR0913 (one call per note; the arguments say what the note is)
    app: Flask,
    client: MissiveClient,
    missive_id: str,
    column: sa.orm.InstrumentedAttribute,
    text: str,
    label: str,
    now: datetime,
    counts: PostCounts,
) -> None:
    if not _claim(missive_id, column, now):
        return  # posted by an earlier or concurrent run
    try:
        client.create_post(
            missive_id,
            text,
            username=app.config["MISSIVE_POST_USERNAME"],
            labels=[label],
            close=True,
        )
    except ProviderError as exc:
        _release(missive_id, column)
        counts.failed += 1
        counts.errors.append(f"{missive_id}: {exc.message}"[:300])
        return
    except BaseException:
        # Not Missive's answer (Redis down for the shared pace, a bug): the note was not posted,
        # so the claim is given back before the run fails.
        db.session.rollback()
        _release(missive_id, column)
        raise
    counts.posted += 1


# -- undeliverable numbers ------------------------------------------------------------------------
def _conversation_of(contact_id: int) -> str | None:
    """The conversation our last Missive send to this contact went to, else its most recently
    updated mirrored one."""
    sent = db.session.scalar(
        sa.select(OutboundMessage.missive_conversation_id)
        .where(
            OutboundMessage.contact_id == contact_id,
            OutboundMessage.missive_conversation_id.is_not(None),
        )
        .order_by(OutboundMessage.id.desc())
        .limit(1)
    )
    if sent:
        return sent
    return db.session.scalar(
        sa.select(MissiveConversation.missive_id)
        .where(MissiveConversation.contact_id == contact_id)
        .order_by(MissiveConversation.updated_at.desc())
        .limit(1)
    )


def undeliverable_note_pending_select(now: datetime) -> sa.Select:
    """Contacts excluded as undeliverable in the last 30 days none of whose conversations has
    had the note yet."""
    noted = (
        sa.select(MissiveConversation.id)
        .where(
            MissiveConversation.contact_id == Contact.id,
            MissiveConversation.undeliverable_posted_at.is_not(None),
        )
        .exists()
    )
    return (
        sa.select(Contact.id, Contact.phone)
        .where(
            Contact.excluded.is_(True),
            Contact.exclude_reason == ExcludeReason.UNDELIVERABLE,
            Contact.excluded_at >= now - timedelta(days=UNDELIVERABLE_NOTE_DAYS),
            ~noted,
        )
        .order_by(Contact.id)
    )


def _exclusion_detail(contact_id: int) -> str:
    """Why the contact was excluded, as its audit entry says ("its last 3 messages failed...",
    "carrier error 30005 on message 12")."""
    summary = db.session.scalar(
        sa.select(AuditLog.summary)
        .where(
            AuditLog.action == "contact.excluded",
            AuditLog.object_type == "contact",
            AuditLog.object_id == str(contact_id),
        )
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    if summary and "): " in summary:
        return summary.split("): ", 1)[1]
    return "the number looks undeliverable"


Progress = Callable[[dict[str, Any]], None]


def post_undeliverable_notes(
    app: Flask, now: datetime, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Post the undeliverable note (with MISSIVE_UNDELIVERABLE_LABEL_ID, closing the
    conversation) once to the conversation of every number recently excluded as undeliverable.
    Returns counts, or why nothing was posted; nothing at all with another transport (there is
    no Missive conversation to post to). `on_progress(counts)` is called after each post (every
    change is committed by then)."""
    if app.config["TRANSPORT"] != "missive":
        return {}
    reason = posts_unavailable(app.config, "MISSIVE_UNDELIVERABLE_LABEL_ID")
    if reason:
        return {"posts_skipped": reason}
    label = app.config["MISSIVE_UNDELIVERABLE_LABEL_ID"]
    counts = PostCounts()
    client = missive_client(app)
    rows = db.session.execute(undeliverable_note_pending_select(now)).all()
    db.session.commit()
    for contact_id, phone in rows:
        conversation = _conversation_of(contact_id)
        if conversation is None:
            counts.no_conversation += 1
            continue
        _mirror(conversation, contact_id, phone)
        text = (
            f"Broadcaster stopped texting {phone}: {_exclusion_detail(contact_id)}. The number "
            "is excluded from "
            "broadcasts and campaigns; include it again from its contact page if it works."
        )
        _post_once(
            app,
            client,
            conversation,
            MissiveConversation.undeliverable_posted_at,
            text,
            label,
            now,
            counts,
        )
        if on_progress is not None:
            on_progress(counts.as_counts("posts"))
    return counts.as_counts("posts")


# -- double failures ------------------------------------------------------------------------------
def double_failures_select(now: datetime) -> sa.Select:
    """Conversations (by the Missive conversation our sends went to) whose last 2 attempted
    broadcast messages were both created within 7 days and both failed or were undelivered, and
    which have not been archived for it before. Campaign messages do not count."""
    cutoff = now - timedelta(days=DOUBLE_FAILURE_DAYS)
    conversation = OutboundMessage.missive_conversation_id
    failing = (
        sa.select(conversation)
        .where(
            conversation.is_not(None),
            OutboundMessage.broadcast_id.is_not(None),
            OutboundMessage.status.in_(FAILED_STATUSES),
            OutboundMessage.created_at >= cutoff,
        )
        .distinct()
    )
    ranked = (
        sa.select(
            conversation.label("conversation"),
            OutboundMessage.contact_id,
            OutboundMessage.status,
            sa.func.row_number()
            .over(
                partition_by=conversation,
                order_by=(OutboundMessage.created_at.desc(), OutboundMessage.id.desc()),
            )
            .label("rank"),
        )
        .where(
            conversation.in_(failing),
            OutboundMessage.broadcast_id.is_not(None),
            OutboundMessage.status.in_(ATTEMPTED),
            OutboundMessage.created_at >= cutoff,
        )
        .subquery()
    )
    archived = (
        sa.select(MissiveConversation.id)
        .where(
            MissiveConversation.missive_id == ranked.c.conversation,
            MissiveConversation.double_failure_archived_at.is_not(None),
        )
        .exists()
    )
    return (
        sa.select(ranked.c.conversation, sa.func.max(ranked.c.contact_id))
        .where(ranked.c.rank <= DOUBLE_FAILURE_RUN, ~archived)
        .group_by(ranked.c.conversation)
        .having(
            sa.func.count() == DOUBLE_FAILURE_RUN,
            sa.func.count().filter(ranked.c.status.in_(FAILED_STATUSES)) == DOUBLE_FAILURE_RUN,
        )
        .order_by(ranked.c.conversation)
    )


def archive_double_failures(
    app: Flask, now: datetime, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Label (MISSIVE_ARCHIVE_LABEL_ID), note and close, once, every conversation that
    `double_failures_select` finds. Returns counts (`conversations_found`, `archived_posted`,
    `archived_failed`), or why nothing was done; `on_progress(counts)` after each post."""
    reason = posts_unavailable(app.config, "MISSIVE_ARCHIVE_LABEL_ID")
    if reason:
        return {"skipped": reason}
    label = app.config["MISSIVE_ARCHIVE_LABEL_ID"]
    rows = db.session.execute(double_failures_select(now)).all()
    db.session.commit()
    counts = PostCounts()
    client = missive_client(app)
    if on_progress is not None:
        on_progress({"conversations_found": len(rows), **counts.as_counts("archived")})
    for conversation, contact_id in rows:
        phone = db.session.scalar(sa.select(Contact.phone).where(Contact.id == contact_id))
        _mirror(conversation, contact_id, phone)
        text = (
            f"Archived by Broadcaster: the last {DOUBLE_FAILURE_RUN} broadcast messages to "
            f"{phone or 'this number'} within {DOUBLE_FAILURE_DAYS} days failed or were "
            "undelivered. The number stays subscribed; this conversation is archived once."
        )
        _post_once(
            app,
            client,
            conversation,
            MissiveConversation.double_failure_archived_at,
            text,
            label,
            now,
            counts,
        )
        if on_progress is not None:
            on_progress({"conversations_found": len(rows), **counts.as_counts("archived")})
    return {"conversations_found": len(rows), **counts.as_counts("archived")}
