"""Who a campaign reaches (SPEC 5): the segments-and-labels grammar, checked and compiled to SQL,
and the one recipients query the estimate, the start and the claim-time check all use.

Targeting is JSON: `{"include": [group, ...], "exclude": [group, ...]}`; a group is a list of
conditions that must all hold (AND); the include groups are alternatives (OR); a contact who
matches any exclude group is subtracted. A condition is

| type | parameters | matches contacts who... |
|---|---|---|
| segment | segment_id | the segment selects (rule or raw SQL segment) |
| label | label_id, since `YYYY-MM-DD` (optional) | have a conversation with the Missive label, applied on or after `since` and not removed |

A contact matched by several groups is one recipient: the query selects contacts, not matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.extensions import db
from app.models import Contact, MissiveLabel, Segment
from app.segments.rules import CompileContext, compile_rule, validate_rule
from app.segments.services import Audience, eligibility_clause, resolve_segment_contact_ids
from app.validation import ValidationError

MAX_GROUPS = 20
MAX_GROUP_CONDITIONS = 20
CONDITION_TYPES = ("segment", "label")
MAX_ID = 2**31 - 1  # ids are PostgreSQL integers


def empty_targeting() -> dict[str, Any]:
    return {"include": [], "exclude": []}


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(f"{where}: {message}", field="targeting")


def _positive_id(value: Any, where: str, what: str) -> int:
    if isinstance(value, bool):
        raise _fail(where, f"choose {what}.")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 1:
        raise _fail(where, f"choose {what}.")
    if value > MAX_ID:  # no row has it, and PostgreSQL would refuse it as an integer
        raise _fail(where, f"no {what.removeprefix('a ')} has the id {value}: choose another.")
    return value


def _check_condition(condition: Any, where: str) -> dict[str, Any]:
    if not isinstance(condition, dict):
        raise _fail(where, "a condition is a segment or a label.")
    kind = condition.get("type")
    if kind == "segment":
        return {
            "type": "segment",
            "segment_id": _positive_id(condition.get("segment_id"), where, "a segment"),
        }
    if kind == "label":
        out: dict[str, Any] = {
            "type": "label",
            "label_id": _positive_id(condition.get("label_id"), where, "a label"),
            "since": None,
        }
        since = condition.get("since")
        if isinstance(since, date):
            since = since.isoformat()
        if since not in (None, ""):
            if not isinstance(since, str):
                raise _fail(where, "the date must look like YYYY-MM-DD.")
            try:
                out["since"] = date.fromisoformat(since.strip()).isoformat()
            except ValueError:
                raise _fail(where, f"{since[:20]!r} is not a date (use YYYY-MM-DD).") from None
        return out
    raise _fail(where, f"unknown condition type {str(kind)[:30]!r} (use segment or label).")


def validate_targeting(targeting: Any) -> dict[str, Any]:
    """The targeting in its canonical form, or ValidationError naming the group and condition
    to fix. Checks that every segment and label exists; an empty include list is refused (a
    campaign to nobody is a mistake, and "everyone" is a segment with an empty rule)."""
    if not isinstance(targeting, dict):
        raise ValidationError(
            'Targeting is {"include": [...], "exclude": [...]}.', field="targeting"
        )
    out: dict[str, Any] = {}
    for side, title in (("include", "Include"), ("exclude", "Exclude")):
        groups = targeting.get(side) or []
        if not isinstance(groups, list):
            raise ValidationError(f"{title} must be a list of groups.", field="targeting")
        if len(groups) > MAX_GROUPS:
            raise ValidationError(f"{title}: at most {MAX_GROUPS} groups.", field="targeting")
        checked = []
        for g, group in enumerate(groups, start=1):
            if not isinstance(group, list):
                raise _fail(f"{title} group {g}", "a group is a list of conditions.")
            if len(group) > MAX_GROUP_CONDITIONS:
                raise _fail(f"{title} group {g}", f"at most {MAX_GROUP_CONDITIONS} conditions.")
            conditions = [
                _check_condition(c, f"{title} group {g}, condition {i}")
                for i, c in enumerate(group, start=1)
            ]
            if not conditions:
                raise _fail(f"{title} group {g}", "add a segment or a label, or remove the group.")
            checked.append(conditions)
        out[side] = checked
    if not out["include"]:
        raise ValidationError("Choose at least one segment or label to send to.", field="targeting")
    _check_exist(out)
    return out


def _check_exist(targeting: dict[str, Any]) -> None:
    conditions = [c for side in targeting.values() for group in side for c in group]
    segment_ids = {c["segment_id"] for c in conditions if c["type"] == "segment"}
    label_ids = {c["label_id"] for c in conditions if c["type"] == "label"}
    if segment_ids:
        found = set(db.session.scalars(sa.select(Segment.id).where(Segment.id.in_(segment_ids))))
        if missing := sorted(segment_ids - found):
            raise ValidationError(
                f"Segment {missing[0]} does not exist (any more): choose another.",
                field="targeting",
            )
    if label_ids:
        found = set(
            db.session.scalars(sa.select(MissiveLabel.id).where(MissiveLabel.id.in_(label_ids)))
        )
        if missing := sorted(label_ids - found):
            raise ValidationError(
                f"Label {missing[0]} does not exist (any more): choose another.",
                field="targeting",
            )


@dataclass(frozen=True)
class Compiler:
    """Compiles conditions to WHERE clauses over `contacts`; segments are loaded once."""

    ctx: CompileContext
    segments: dict[int, Segment]

    def condition(self, condition: dict[str, Any]) -> sa.ColumnElement[bool]:
        if condition["type"] == "label":
            rule = {"all": [{"type": "has_label", **_label_params(condition)}]}
            return compile_rule(rule, self.ctx)
        segment = self.segments.get(condition["segment_id"])
        if segment is None:
            raise ValidationError(
                f"Segment {condition['segment_id']} does not exist any more.", field="targeting"
            )
        try:
            if segment.raw_sql:
                # Raw SQL cannot be inlined: its (eligible) ids, bound as one array parameter.
                ids = resolve_segment_contact_ids(
                    segment, purpose=Audience.CAMPAIGN, now=self.ctx.now
                )
                return Contact.id.in_(ids) if ids else sa.false()
            return compile_rule(validate_rule(segment.rule), self.ctx)
        except ValidationError as exc:
            # The segment's own error (field raw_sql or rule) belongs to the targeting here.
            raise ValidationError(
                f"Segment {segment.name}: {exc.message}", field="targeting"
            ) from exc

    def groups(self, groups: list[list[dict[str, Any]]]) -> sa.ColumnElement[bool] | None:
        if not groups:
            return None
        return sa.or_(*(sa.and_(*(self.condition(c) for c in group)) for group in groups))


def _label_params(condition: dict[str, Any]) -> dict[str, Any]:
    return {"label_id": condition["label_id"], "since": condition.get("since")}


def compiler(targeting: dict[str, Any], *, now: datetime, zone: str) -> Compiler:
    ids = {
        c["segment_id"]
        for side in ("include", "exclude")
        for group in targeting.get(side, [])
        for c in group
        if c["type"] == "segment"
    }
    segments = (
        {s.id: s for s in db.session.scalars(sa.select(Segment).where(Segment.id.in_(ids)))}
        if ids
        else {}
    )
    return Compiler(CompileContext(now=now, zone=ZoneInfo(zone)), segments)


def exclude_clause(
    targeting: dict[str, Any], *, now: datetime, zone: str
) -> sa.ColumnElement[bool] | None:
    """The exclude groups as one clause over `contacts` (None when there are none): the start
    subtracts it, and the engine checks it again just before each batch goes out."""
    return compiler(targeting, now=now, zone=zone).groups(targeting.get("exclude") or [])


def segments_select(
    targeting: dict[str, Any], *, now: datetime, zone: str
) -> sa.Select[tuple[int]]:
    """`SELECT contacts.id` of the eligible contacts a (checked) targeting reaches, once each."""
    build = compiler(targeting, now=now, zone=zone)
    include = build.groups(targeting.get("include") or [])
    query = sa.select(Contact.id).where(
        eligibility_clause(Audience.CAMPAIGN), include if include is not None else sa.false()
    )
    exclude = build.groups(targeting.get("exclude") or [])
    if exclude is not None:
        # A rule that cannot tell (NULL: no such attribute, no zip code) does not subtract:
        # NOT NULL would drop the contact silently.
        query = query.where(sa.not_(sa.func.coalesce(exclude, sa.false())))
    return query


def describe_targeting(targeting: dict[str, Any]) -> dict[str, list[list[str]]]:
    """Each group's conditions in words ("Segment Readers", "Label Detroit since 2026-11-01")."""
    conditions = [c for side in targeting.values() for group in side for c in group]
    segment_ids = {c["segment_id"] for c in conditions if c["type"] == "segment"}
    label_ids = {c["label_id"] for c in conditions if c["type"] == "label"}
    segments = (
        dict(
            db.session.execute(
                sa.select(Segment.id, Segment.name).where(Segment.id.in_(segment_ids))
            ).all()
        )
        if segment_ids
        else {}
    )
    labels = (
        dict(
            db.session.execute(
                sa.select(MissiveLabel.id, MissiveLabel.name).where(MissiveLabel.id.in_(label_ids))
            ).all()
        )
        if label_ids
        else {}
    )

    def words(c: dict[str, Any]) -> str:
        if c["type"] == "segment":
            return f"Segment {segments.get(c['segment_id'], '#' + str(c['segment_id']) + ' (deleted)')}"
        name = labels.get(c["label_id"], f"#{c['label_id']} (deleted)")
        return f"Label {name}" + (f" since {c['since']}" if c.get("since") else "")

    return {
        side: [[words(c) for c in group] for group in targeting.get(side, [])]
        for side in ("include", "exclude")
    }
