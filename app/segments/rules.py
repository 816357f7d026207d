"""The segment rule language (SPEC 3.1): checking a rule, describing it, and compiling it to SQL.

A rule is `{"all": [node, ...]}` or `{"any": [node, ...]}`; a node is a condition or another group.
Conditions are `{"type": ..., ...parameters}`:

| type | parameters | matches contacts who... |
|---|---|---|
| zip_code | op `in`/`not_in`, values [zip, ...] | have (or lack) one of these zip codes |
| created_at | op `before`/`after`, value `YYYY-MM-DD` | were created before the date / on or after it |
| name, email | op `is_set`/`is_not_set` | have (or lack) a name / an email |
| attribute | key, op `equals`/`contains`/`is_set`, value | have this custom attribute (case-insensitive) |
| has_label | label_id, since `YYYY-MM-DD` (optional) | have a conversation carrying the label, applied on or after `since`, not removed |
| replied_within_days | days | replied (not STOP/START/HELP) in the last N days |
| not_replied_within_days | days | did not reply in the last N days |
| received_within_days | days, broadcasts_only | were sent a message in the last N days (from broadcasts only) |
| never_received | — | were never sent a message |
| in_upload | upload_id | were in that CSV upload |

A group with no conditions is ignored (an empty rule matches everyone). Dates are days in the organisation's time zone.
Everything compiles to SQLAlchemy expressions over `Contact` (bound parameters, never strings).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.contacts.fields import FieldProblem, check_zip_code
from app.models import (
    RECEIVED_STATUSES,
    Contact,
    InboundMessage,
    MissiveConversation,
    MissiveConversationLabel,
    OutboundMessage,
    UploadContact,
)
from app.validation import ValidationError

MAX_DEPTH = 4
MAX_CONDITIONS = 50
MAX_VALUES = 1000
MAX_DAYS = 3650
GROUP_MODES = ("all", "any")


@dataclass(frozen=True)
class ConditionType:
    name: str
    label: str  # what the builder's menu says
    ops: tuple[tuple[str, str], ...] = ()  # (value, label)
    noun: str = ""  # how a message names it: "the first condition (zip code)"


CONDITION_TYPES: dict[str, ConditionType] = {
    c.name: c
    for c in (
        ConditionType(
            "zip_code",
            "Zip code",
            (("in", "is one of"), ("not_in", "is not one of")),
            "zip code",
        ),
        ConditionType(
            "created_at",
            "Added",
            (("before", "before"), ("after", "on or after")),
            "date added",
        ),
        ConditionType("name", "Name", (("is_set", "is set"), ("is_not_set", "is not set")), "name"),
        ConditionType(
            "email", "Email", (("is_set", "is set"), ("is_not_set", "is not set")), "email"
        ),
        ConditionType(
            "attribute",
            "Custom attribute",
            (("equals", "equals"), ("contains", "contains"), ("is_set", "is set")),
            "custom attribute",
        ),
        ConditionType("has_label", "Has Missive label", noun="Missive label"),
        ConditionType("replied_within_days", "Replied in the last", noun="replied"),
        ConditionType("not_replied_within_days", "Did not reply in the last", noun="did not reply"),
        ConditionType(
            "received_within_days", "Was sent a message in the last", noun="was sent a message"
        ),
        ConditionType("never_received", "Was never sent a message", noun="never sent a message"),
        ConditionType("in_upload", "Was in upload", noun="upload"),
    )
}


def empty_rule() -> dict[str, Any]:
    return {"all": []}


# --- checking ---------------------------------------------------------------------------------


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(f"{where}: {message}" if where else message, field="rule")


_ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
)


def ordinal(number: int) -> str:
    """`first`, `second`, ... `twelfth`, then `13th`, `21st`, `22nd`."""
    if number <= len(_ORDINALS):
        return _ORDINALS[number - 1]
    suffix = (
        "th" if 11 <= number % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def describe_place(steps: list[tuple[str, int]], noun: str = "") -> str:
    """Where a node sits, in words: steps from the root as (`group`|`condition`, its number
    among its siblings of that kind). `[("group", 2), ("condition", 1)]` with noun `zip code`:
    "The first condition (zip code) of the second group"."""
    *groups, (kind, number) = steps
    text = f"The {ordinal(number)} {kind}" + (f" ({noun})" if noun else "")
    for index, (_, group_number) in enumerate(reversed(groups)):
        text += f" {'of' if index == 0 else 'in'} the {ordinal(group_number)} group"
    return text


def _parse_date(value: Any, where: str, what: str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"choose {what}.")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _fail(where, f"{value!r} is not a date (use YYYY-MM-DD).") from None


def _positive_int(value: Any, where: str, what: str, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise _fail(where, f"choose {what}.")
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise _fail(where, f"choose {what}." if not value else f"{what} must be a number.")
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise _fail(where, f"choose {what}.")
    if maximum is not None and value > maximum:
        raise _fail(where, f"{what} must be at most {maximum:,}.")
    return value


def _op(condition: dict[str, Any], ctype: ConditionType, where: str) -> str:
    op = condition.get("op") or ctype.ops[0][0]
    if op not in {value for value, _ in ctype.ops}:
        raise _fail(where, f"unknown comparison {op!r}.")
    return op


def _check_condition(
    condition: dict[str, Any], steps: list[tuple[str, int]], zip_region: str = ""
) -> dict[str, Any]:
    kind = condition.get("type")
    ctype = CONDITION_TYPES.get(kind) if isinstance(kind, str) else None
    if ctype is None:
        raise _fail(describe_place(steps), f"unknown condition type {kind!r}.")
    where = describe_place(steps, ctype.noun)
    out: dict[str, Any] = {"type": kind}
    if kind == "zip_code":
        out["op"] = _op(condition, ctype, where)
        values = condition.get("values")
        if isinstance(values, str):
            values = re.split(r"[\s,;]+", values)
        if not isinstance(values, list):
            raise _fail(where, "enter at least one zip code.")
        zips = list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
        if not zips:
            raise _fail(where, "enter at least one zip code.")
        if len(zips) > MAX_VALUES:
            raise _fail(where, f"at most {MAX_VALUES} zip codes.")
        if any(len(z) > 12 for z in zips):
            raise _fail(where, "a zip code has at most 12 characters.")
        if zip_region:
            try:
                zips = list(dict.fromkeys(check_zip_code(z, zip_region) for z in zips))
            except FieldProblem as exc:
                raise _fail(where, str(exc)) from None
        out["values"] = zips
    elif kind == "created_at":
        out["op"] = _op(condition, ctype, where)
        out["value"] = _parse_date(condition.get("value"), where, "a date")
    elif kind in ("name", "email"):
        out["op"] = _op(condition, ctype, where)
    elif kind == "attribute":
        key = str(condition.get("key") or "").strip()
        if not key:
            raise _fail(where, "enter the attribute's name.")
        if len(key) > 64:
            raise _fail(where, "an attribute name has at most 64 characters.")
        out["key"] = key
        out["op"] = _op(condition, ctype, where)
        if out["op"] != "is_set":
            value = str(condition.get("value") or "").strip()
            if not value:
                raise _fail(where, "enter the value to compare with.")
            out["value"] = value[:200]
    elif kind == "has_label":
        out["label_id"] = _positive_int(condition.get("label_id"), where, "a label")
        since = condition.get("since")
        out["since"] = _parse_date(since, where, "a date") if since else None
    elif kind in ("replied_within_days", "not_replied_within_days", "received_within_days"):
        out["days"] = _positive_int(condition.get("days"), where, "a number of days", MAX_DAYS)
        if kind == "received_within_days":
            out["broadcasts_only"] = bool(condition.get("broadcasts_only"))
    elif kind == "in_upload":
        out["upload_id"] = _positive_int(condition.get("upload_id"), where, "an upload")
    return out


def validate_rule(
    rule: Any, zip_region: str = "", notes: list[str] | None = None
) -> dict[str, Any]:
    """The rule in its canonical form, or ValidationError saying which condition to fix and how,
    naming it as a person would ("The first condition (zip code) of the second group: ...").

    With `zip_region` (where a rule is typed, not where a saved one runs) zip codes must be
    that region's (US: 5 digits or ZIP+4). With a `notes` list (the builder's drafts), a
    condition whose type is not chosen yet and a group left with no condition are dropped,
    each with a note saying so, instead of refused."""
    if not isinstance(rule, dict):
        raise _fail("", 'a rule is {"all": [...]} or {"any": [...]}.')
    counter = [0]

    def group(
        node: dict[str, Any], steps: list[tuple[str, int]], depth: int, path: str = "r"
    ) -> dict[str, Any]:
        where = describe_place(steps) if steps else ""
        modes = [m for m in GROUP_MODES if m in node]
        if len(modes) != 1 or len(node) != 1:
            raise _fail(where, 'a group is {"all": [...]} or {"any": [...]}.')
        mode = modes[0]
        children = node[mode]
        if not isinstance(children, list):
            raise _fail(where, f'"{mode}" must hold a list of conditions.')
        checked: list[dict[str, Any]] = []
        numbers = {"condition": 0, "group": 0}
        for index, child in enumerate(children):
            kind = "group" if isinstance(child, dict) and "type" not in child else "condition"
            numbers[kind] += 1
            child_steps = [*steps, (kind, numbers[kind])]
            try:
                kept = child_node(child, kind, child_steps, depth, f"{path}.{index}")
            except ValidationError as exc:
                # The builder's path of the node at fault (`r.1.0`: the first child of the
                # root's second), so the page can mark that node's fields and tie the message
                # to them. The innermost node that fails names itself first.
                if getattr(exc, "node", None) is None:
                    exc.node = f"{path}.{index}"
                raise
            if kept is not None:
                checked.append(kept)
        return {mode: checked}

    def child_node(
        child: Any, kind: str, child_steps: list[tuple[str, int]], depth: int, path: str
    ) -> dict[str, Any] | None:
        if not isinstance(child, dict):
            raise _fail(describe_place(child_steps), "must be a condition or a group.")
        if kind == "condition" and notes is not None and not child.get("type"):
            notes.append(f"{describe_place(child_steps)} is not chosen yet: left out.")
            return None
        if kind == "condition":
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise _fail("", f"a rule has at most {MAX_CONDITIONS} conditions.")
            return _check_condition(child, child_steps, zip_region)
        if depth >= MAX_DEPTH:
            raise _fail(describe_place(child_steps), f"groups nest at most {MAX_DEPTH} deep.")
        noted = len(notes) if notes is not None else 0
        inner = group(child, child_steps, depth + 1, path)
        if notes is not None and not inner[next(iter(inner))]:
            del notes[noted:]  # one note for the group, not one per unchosen condition
            notes.append(f"{describe_place(child_steps)} has no condition yet: left out.")
            return None
        return inner

    return group(rule, [], 1)


# --- describing -------------------------------------------------------------------------------


def describe_condition(condition: dict[str, Any], labels: dict[int, str] | None = None) -> str:
    """One condition in words, for lists and summaries."""
    kind = condition["type"]
    ctype = CONDITION_TYPES[kind]
    op_label = dict(ctype.ops).get(condition.get("op", ""), "")
    if kind == "zip_code":
        return f"Zip code {op_label} {', '.join(condition['values'])}"
    if kind == "created_at":
        return f"Added {op_label} {condition['value']}"
    if kind in ("name", "email"):
        return f"{ctype.label} {op_label}"
    if kind == "attribute":
        tail = "" if condition["op"] == "is_set" else f" “{condition['value']}”"
        return f"Attribute {condition['key']} {op_label}{tail}"
    if kind == "has_label":
        name = (labels or {}).get(condition["label_id"], f"label #{condition['label_id']}")
        since = f" since {condition['since']}" if condition.get("since") else ""
        return f"Has label {name}{since}"
    if kind in ("replied_within_days", "not_replied_within_days", "received_within_days"):
        tail = " (broadcasts only)" if condition.get("broadcasts_only") else ""
        return f"{ctype.label} {condition['days']} days{tail}"
    if kind == "in_upload":
        return f"Was in upload #{condition['upload_id']}"
    return ctype.label


def iter_conditions(rule: dict[str, Any]):
    """Every condition of a (checked) rule, depth first."""
    for children in rule.values():
        for child in children:
            if "type" in child:
                yield child
            else:
                yield from iter_conditions(child)


# --- compiling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileContext:
    now: datetime  # aware UTC: "in the last N days" counts back from here
    zone: ZoneInfo  # the organisation's time zone: dates mean its local days


def _day_start(day: str, ctx: CompileContext) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(0), tzinfo=ctx.zone)


def _is_set(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return sa.and_(column.is_not(None), sa.func.trim(column) != "")


def _replied(days: int, ctx: CompileContext) -> sa.ColumnElement[bool]:
    return sa.exists().where(
        InboundMessage.contact_id == Contact.id,
        InboundMessage.received_at >= ctx.now - timedelta(days=days),
        InboundMessage.keyword.is_(None),
    )


def _received(condition: dict[str, Any], ctx: CompileContext) -> sa.ColumnElement[bool]:
    where = [
        OutboundMessage.contact_id == Contact.id,
        OutboundMessage.status.in_(RECEIVED_STATUSES),
    ]
    if "days" in condition:
        where.append(OutboundMessage.sent_at >= ctx.now - timedelta(days=condition["days"]))
    if condition.get("broadcasts_only"):
        where.append(OutboundMessage.broadcast_id.is_not(None))
    return sa.exists().where(*where)


def _has_label(condition: dict[str, Any], ctx: CompileContext) -> sa.ColumnElement[bool]:
    link = MissiveConversationLabel
    where = [
        MissiveConversation.contact_id == Contact.id,
        link.conversation_id == MissiveConversation.id,
        link.label_id == condition["label_id"],
        link.removed.is_(False),
    ]
    if condition.get("since"):
        where.append(link.last_applied_at >= _day_start(condition["since"], ctx))
    return sa.exists().where(*where)


def _attribute(condition: dict[str, Any]) -> sa.ColumnElement[bool]:
    value = Contact.attributes[condition["key"]].as_string()
    if condition["op"] == "is_set":
        return _is_set(value)
    wanted = condition["value"].lower()
    if condition["op"] == "equals":
        return sa.func.lower(value) == wanted
    escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.func.lower(value).like(f"%{escaped}%", escape="\\")


def _zip(condition: dict[str, Any]) -> sa.ColumnElement[bool]:
    matches = Contact.zip_code.in_(condition["values"])
    if condition["op"] == "in":
        return matches
    return sa.or_(Contact.zip_code.is_(None), sa.not_(matches))


def _created(condition: dict[str, Any], ctx: CompileContext) -> sa.ColumnElement[bool]:
    start = _day_start(condition["value"], ctx)
    if condition["op"] == "before":
        return Contact.created_at < start
    return Contact.created_at >= start


_COMPILERS: dict[str, Callable[[dict[str, Any], CompileContext], sa.ColumnElement[bool]]] = {
    "zip_code": lambda c, ctx: _zip(c),
    "created_at": _created,
    "name": lambda c, ctx: _is_set(Contact.name) if c["op"] == "is_set" else ~_is_set(Contact.name),
    "email": lambda c, ctx: (
        _is_set(Contact.email) if c["op"] == "is_set" else ~_is_set(Contact.email)
    ),
    "attribute": lambda c, ctx: _attribute(c),
    "has_label": _has_label,
    "replied_within_days": lambda c, ctx: _replied(c["days"], ctx),
    "not_replied_within_days": lambda c, ctx: ~_replied(c["days"], ctx),
    "received_within_days": _received,
    "never_received": lambda c, ctx: ~_received(c, ctx),
    "in_upload": lambda c, ctx: Contact.id.in_(
        sa.select(UploadContact.contact_id).where(UploadContact.upload_id == c["upload_id"])
    ),
}


def _compile_group(rule: dict[str, Any], ctx: CompileContext) -> sa.ColumnElement[bool] | None:
    (mode, children), *_ = rule.items()
    parts = [
        _COMPILERS[child["type"]](child, ctx) if "type" in child else _compile_group(child, ctx)
        for child in children
    ]
    parts = [p for p in parts if p is not None]  # an empty group is ignored, wherever it is
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return sa.and_(*parts) if mode == "all" else sa.or_(*parts)


def compile_rule(rule: dict[str, Any], ctx: CompileContext) -> sa.ColumnElement[bool]:
    """A checked rule (see validate_rule) as one WHERE clause over `contacts`."""
    clause = _compile_group(rule, ctx)
    return sa.true() if clause is None else clause
