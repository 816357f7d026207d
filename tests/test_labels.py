"""The words pages show for stored names (app/labels.py): statuses by kind of thing, the badge that
shows them in the stored name's colour, and a label for every audit action the code records."""

from __future__ import annotations

import ast
import enum
from pathlib import Path

import pytest
from flask import render_template_string
from rq.worker import WorkerStatus

from app.labels import (
    AUDIT_ACTION_LABELS,
    STATUS_LABELS,
    audit_action_label,
    status_label,
    stored_value,
)
from app.models import BroadcastStatus, CampaignStatus, MessageStatus
from app.models.system import JobOutcome
from app.models.upload import UploadPurpose, UploadStatus

APP_DIR = Path(__file__).resolve().parent.parent / "app"


@pytest.mark.parametrize(
    ("value", "kind", "words"),
    [
        ("unknown", "message", "outcome unknown"),
        (MessageStatus.UNDELIVERED, "message", "not delivered"),
        ("sending", "message", "sending"),
        # In "Needs attention", a message still `sending` is one whose worker never reported.
        ("sending", "attention", "no report"),
        ("unknown", "attention", "outcome unknown"),
        (UploadStatus.VALIDATED, "upload", "ready to import"),
        ("done", "upload", "imported"),
        (JobOutcome.SUCCESS, "job", "succeeded"),
        # RQ's worker states are plain enums: their value, never `WorkerStatus.IDLE`.
        (WorkerStatus.IDLE, "worker", "idle"),
        (WorkerStatus.STARTED, "worker", "starting"),
        ("stop", "inbound", "STOP"),
        (UploadPurpose.CONTACT_IMPORT, "upload purpose", "contact import"),
        # Not listed: the stored name, tidied.
        ("rate_limited", "job", "rate limited"),
        ("whatever_this_is", "no such kind", "whatever this is"),
        (None, "message", ""),
    ],
)
def test_status_label_gives_the_words_for_a_stored_status_of_a_kind(value, kind, words):
    assert status_label(value, kind) == words


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        ("message", MessageStatus),
        ("attention", MessageStatus),
        ("broadcast", BroadcastStatus),
        ("campaign", CampaignStatus),
        ("upload", UploadStatus),
        ("upload purpose", UploadPurpose),
        ("job", JobOutcome),
        ("worker", WorkerStatus),
    ],
)
def test_every_stored_status_of_a_kind_has_its_words_listed(kind, statuses: type[enum.Enum]):
    # A status added to an enum must be given its words here, not left to the tidy fallback.
    assert {s.value for s in statuses} <= set(STATUS_LABELS[kind])


def test_stored_value_is_an_enums_value_and_a_string_otherwise():
    assert stored_value(WorkerStatus.BUSY) == "busy"
    assert stored_value(MessageStatus.UNKNOWN) == "unknown"
    assert stored_value("queued") == "queued"
    assert stored_value(None) == ""


def test_status_badge_shows_the_words_in_the_stored_names_colour(app):
    template = '{% from "macros/ui.html" import status_badge %}{{ status_badge(value, of) }}'
    with app.test_request_context():
        html = render_template_string(template, value=MessageStatus.UNKNOWN, of="message")
        assert html == '<span class="badge badge--unknown">outcome unknown</span>'
        html = render_template_string(template, value=WorkerStatus.IDLE, of="worker")
        assert html == '<span class="badge badge--idle">idle</span>'
        html = render_template_string(template, value="undelivered", of="message")
        assert html == '<span class="badge badge--undelivered">not delivered</span>'


def test_audit_action_label_reads_as_words_and_tidies_an_unlisted_action():
    assert audit_action_label("broadcast.start") == "Broadcast started"
    assert audit_action_label("api_token.create") == "API token created"
    assert audit_action_label("periodic_job.run_now") == "Job run started by hand"
    assert audit_action_label("something.new_here") == "Something new here"
    assert audit_action_label("plain") == "Plain"


# -- every recorded audit action has a label -------------------------------------------------------
# Scanning the source (rather than making record_audit refuse unknown actions) finds every call,
# including paths no test runs, and a missing label never turns a person's change into a 500 in
# production. The scan accepts the forms the code uses: a string, `"a" if x else "b"`, or a
# variable named `action` whose string values are assigned (or passed as `action=`) in the same
# module; anything else fails here, so a new form has to be spelled out.


def _strings(node: ast.expr) -> set[str] | None:
    """The strings an expression can be: a constant, or either branch of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _strings(node.body), _strings(node.orelse)
        return None if body is None or orelse is None else body | orelse
    return None


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def recorded_actions() -> tuple[set[str], list[str]]:
    """Every action string passed to record_audit in app/, and the calls this scan cannot read."""
    actions: set[str] = set()
    unreadable: list[str] = []
    for path in sorted(APP_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        # `action = "a" if x else "b"` and `helper(..., action="a")`: where a variable gets its values.
        named: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "action" for t in node.targets
            ):
                named |= _strings(node.value) or set()
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "action":
                        named |= _strings(keyword.value) or set()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _called_name(node) == "record_audit"):
                continue
            where = f"{path.relative_to(APP_DIR.parent)}:{node.lineno}"
            argument = node.args[0] if node.args else None
            for keyword in node.keywords:
                if keyword.arg == "action":
                    argument = keyword.value
            strings = _strings(argument) if argument is not None else None
            if strings is not None:
                actions |= strings
            elif isinstance(argument, ast.Name) and argument.id == "action" and named:
                actions |= named
            else:
                unreadable.append(where)
    return actions, unreadable


def test_every_action_recorded_in_the_code_has_a_label():
    actions, unreadable = recorded_actions()
    assert unreadable == [], "spell these actions out as strings so they can be checked"
    assert len(actions) > 30  # the scan found the calls (it reads 40 or so today)
    assert sorted(actions - set(AUDIT_ACTION_LABELS)) == []


def test_every_audit_label_is_for_an_action_the_code_records():
    # A label left behind for an action no longer recorded is dead weight: remove it with the call.
    actions, _ = recorded_actions()
    assert sorted(set(AUDIT_ACTION_LABELS) - actions) == []
