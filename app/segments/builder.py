"""The builder's form encoding of a rule tree, and its edits (add or remove a condition or group).

Every node has a path: the root group is `r`, its children `r.0`, `r.1`, theirs `r.1.0`...
The form carries `node=<path>` for each node, in order, and `<path>.<field>` for its fields
(`kind`, `mode` for groups; `type`, `op`, `values`, `value`, `days`... for conditions). A draft
keeps what was typed, even when it is not a valid rule yet, so nothing is lost while editing.
A new condition (and the one a new group starts with) has no type yet (`{"type": ""}`): the
builder shows it as a picker, and saving drops it (see rules.validate_rule's notes).
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from app.segments.rules import CONDITION_TYPES, GROUP_MODES

ROOT = "r"
CONDITION_FIELDS = (
    "op",
    "values",
    "value",
    "key",
    "label_id",
    "since",
    "days",
    "broadcasts_only",
    "upload_id",
)
MAX_NODES = 200


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def getlist(self, key: str) -> list[Any]: ...


def _path_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in path.split(".")[1:])


def _valid_path(path: str) -> bool:
    parts = path.split(".")
    return parts[0] == ROOT and all(p.isdigit() and len(p) < 4 for p in parts[1:])


def rule_from_form(form: FormData) -> dict[str, Any]:
    """The draft rule the builder's form describes (not checked: see rules.validate_rule)."""
    paths = [p for p in form.getlist("node")[:MAX_NODES] if _valid_path(p)]
    root_mode = form.get(f"{ROOT}.mode")
    nodes: dict[str, dict[str, Any]] = {
        ROOT: {root_mode if root_mode in GROUP_MODES else "all": []}
    }
    for path in sorted(set(paths) - {ROOT}, key=_path_key):
        parent = nodes.get(path.rsplit(".", 1)[0])
        if parent is None:
            continue  # an orphan (its group was removed): dropped
        if form.get(f"{path}.kind") == "group":
            mode = form.get(f"{path}.mode")
            node: dict[str, Any] = {mode if mode in GROUP_MODES else "all": []}
        else:
            node = {"type": form.get(f"{path}.type") or ""}
            for name in CONDITION_FIELDS:
                value = form.get(f"{path}.{name}")
                if value not in (None, ""):
                    node[name] = value
        nodes[path] = node
        next(iter(parent.values())).append(node)
    return nodes[ROOT]


def _find(rule: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] = rule
    for index in _path_key(path):
        if "type" in node:
            return None
        children = next(iter(node.values()))
        if index >= len(children):
            return None
        node = children[index]
    return node


def new_condition(kind: str = "") -> dict[str, Any]:
    """A condition of `kind` with its first comparison; no kind: a picker (type not chosen)."""
    ctype = CONDITION_TYPES.get(kind)
    if ctype is None:
        return {"type": ""}
    condition: dict[str, Any] = {"type": ctype.name}
    if ctype.ops:
        condition["op"] = ctype.ops[0][0]
    return condition


def edit_rule(rule: dict[str, Any], action: str, path: str) -> dict[str, Any]:
    """A copy of the draft with one edit: `add_condition`/`add_group` inside the group at
    `path`, `remove` the node at `path`, or `retype` it (a condition whose type changed starts
    afresh). Unknown actions or paths change nothing."""
    edited = copy.deepcopy(rule)
    if not _valid_path(path):
        return edited
    if action in ("add_condition", "add_group"):
        group = _find(edited, path)
        if group is None or "type" in group:
            return edited
        children = next(iter(group.values()))
        if action == "add_condition":
            children.append(new_condition())
        elif len(_path_key(path)) < 3:  # the root plus three levels of groups
            children.append({"any": [new_condition()]})
    elif action == "retype":
        node = _find(edited, path)
        if node is not None and "type" in node:
            fresh = new_condition(node["type"])
            node.clear()
            node.update(fresh)
    elif action == "remove" and path != ROOT:
        parent = _find(edited, path.rsplit(".", 1)[0])
        index = _path_key(path)[-1]
        if parent is not None and "type" not in parent:
            children = next(iter(parent.values()))
            if index < len(children):
                del children[index]
    return edited
