"""Quiet hours, keywords and automatic replies on the Settings page: admins change them, each
change is audited and takes effect at once; bad input is a 422 naming the field, saving nothing."""

from __future__ import annotations

from datetime import time

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.inbound.keywords import classify
from app.models import AuditLog, Keyword
from app.sending.quiet import quiet_window
from app.settings.services import (
    extra_keywords,
    help_reply,
    keyword_lists,
    keyword_reply,
    opt_out_reply,
    quiet_hours,
)
from tests.support import HX, by_id


def audits(action: str) -> list[AuditLog]:
    return list(db.session.scalars(sa.select(AuditLog).where(AuditLog.action == action)))


def test_admin_sets_the_quiet_hours_window_and_the_engine_uses_it(admin_client, app):
    response = admin_client.post(
        "/settings/quiet-hours", data={"enabled": "1", "start": "08:30", "end": "21:15"}
    )
    assert response.status_code == 302 and response.location.endswith("#settings-quiet-hours")
    assert quiet_window(app) == (time(8, 30), time(21, 15))
    [entry] = audits("settings.quiet_hours")
    assert entry.summary == "Quiet hours: send only 08:30–21:15"
    html = admin_client.get("/settings/").get_data(as_text=True)
    assert 'value="08:30" selected' in by_id(html, "settings-quiet-start")
    assert "sends only 08:30–21:15 recipient time" in by_id(html, "settings-rules")


def test_admin_turns_quiet_hours_off(admin_client, app):
    admin_client.post("/settings/quiet-hours", data={"start": "09:00", "end": "20:00"})
    assert quiet_window(app) is None and quiet_hours(("09:00", "20:00")) is None
    html = admin_client.get("/settings/").get_data(as_text=True)
    assert "checked" not in by_id(html, "settings-quiet-enabled")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"enabled": "1", "start": "09:10", "end": "20:00"}, "start", "15-minute step"),
        ({"enabled": "1", "start": "nine", "end": "20:00"}, "start", "a time from the list"),
        ({"enabled": "1", "start": "09:00", "end": "09:00"}, "end", "the same time"),
        ({"enabled": "1", "start": "09:00", "end": "25:00"}, "end", "15-minute step"),
        ({"enabled": "1", "start": "24:00", "end": "09:00"}, "start", "15-minute step"),
        ({"enabled": "1", "start": "20:00", "end": "09:00"}, "end", "must come after the start"),
        ({"enabled": "1", "start": "٠٩:٠٠", "end": "20:00"}, "start", "a time from the list"),
        ({"enabled": "1", "start": "1_0:00", "end": "20:00"}, "start", "a time from the list"),
    ],
)
def test_a_bad_window_is_a_422_at_its_field_and_nothing_changes(
    admin_client, app, data, field, message
):
    response = admin_client.post("/settings/quiet-hours", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in by_id(html, f"settings-{field}-error")
    assert quiet_hours(("09:00", "20:00")) == ("09:00", "20:00")  # the configured default
    assert audits("settings.quiet_hours") == []


def test_extra_keywords_are_saved_audited_and_classify_the_next_message(admin_client):
    response = admin_client.post(
        "/settings/keywords",
        data={"opt_out": "remove me\nOpt-Me-Out", "opt_in": "subscribe", "help": "aide"},
    )
    assert response.status_code == 302
    assert extra_keywords() == {
        "opt_out": ["REMOVE ME", "OPT ME OUT"],
        "opt_in": ["SUBSCRIBE"],
        "help": ["AIDE"],
    }
    lists = keyword_lists()
    assert classify("remove me.", lists) == Keyword.STOP
    assert classify("Subscribe!", lists) == Keyword.START
    assert classify("opt out", lists) == Keyword.STOP  # built-ins stay
    [entry] = audits("settings.keywords")
    assert "opt-out: REMOVE ME, OPT ME OUT" in entry.summary


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"opt_in": "stop"}, "opt_in", "“STOP” is a built-in opt-out word"),
        ({"opt_in": "Opt-out"}, "opt_in", "“OPT OUT” is a built-in opt-out word"),
        ({"help": "start"}, "help", "“START” is a built-in opt-in word"),
        ({"opt_out": "remove me", "opt_in": "remove-me"}, "opt_in", "already in the opt-out list"),
        ({"opt_out": "this is far too long a keyword"}, "opt_out", "cannot be a keyword"),
    ],
)
def test_a_word_in_two_lists_or_not_a_word_is_refused_and_nothing_is_saved(
    admin_client, data, field, message
):
    response = admin_client.post("/settings/keywords", data=data)
    assert response.status_code == 422
    assert message in by_id(response.get_data(as_text=True), f"settings-{field}-error").text
    assert extra_keywords() == {"opt_out": [], "opt_in": [], "help": []}


def test_the_help_reply_and_the_opt_out_confirmation_are_editable(admin_client, app):
    assert help_reply("Configured in the environment") == "Configured in the environment"
    response = admin_client.post(
        "/settings/replies",
        data={"help_reply": "Newsroom texts. Reply STOP to end.", "opt_out_reply": ""},
    )
    assert response.status_code == 302
    assert help_reply("ignored default") == "Newsroom texts. Reply STOP to end."
    assert opt_out_reply() is None
    assert keyword_reply(Keyword.HELP, subscription_changed=False, default_help=None) == (
        "Newsroom texts. Reply STOP to end."
    )
    assert keyword_reply(Keyword.STOP, subscription_changed=True, default_help=None) is None
    admin_client.post(
        "/settings/replies", data={"help_reply": "", "opt_out_reply": "You're unsubscribed."}
    )
    assert help_reply("the configured default") is None  # saved empty: no answer at all
    assert keyword_reply(Keyword.STOP, subscription_changed=True, default_help=None) == (
        "You're unsubscribed."
    )
    assert keyword_reply(Keyword.STOP, subscription_changed=False, default_help=None) is None
    html = admin_client.get("/settings/").get_data(as_text=True)
    assert "20 characters · 1 SMS (GSM-7)" in by_id(html, "settings-opt_out_reply-count")
    assert len(audits("settings.help_reply")) == 2


def test_a_reply_longer_than_two_sms_is_refused(admin_client):
    response = admin_client.post(
        "/settings/replies", data={"help_reply": "x" * 321, "opt_out_reply": ""}
    )
    assert response.status_code == 422
    assert "at most 320 characters" in by_id(
        response.get_data(as_text=True), "settings-help_reply-error"
    )


@pytest.mark.parametrize(
    "path", ["/settings/quiet-hours", "/settings/keywords", "/settings/replies"]
)
def test_only_admins_change_compliance_settings(operator_client, path):
    assert operator_client.post(path, data={}).status_code == 403
    html = operator_client.get("/settings/").get_data(as_text=True)
    assert "settings-quiet-form" not in html and "settings-keywords-form" not in html


def test_the_reply_counter_follows_what_is_typed(admin_client):
    response = admin_client.post(
        "/settings/sms-count?field=help_reply", data={"help_reply": "Réponds STOP 🗳"}, headers=HX
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert "1 SMS (UCS-2)" in by_id(html, "settings-help_reply-count").text
    assert admin_client.post("/settings/sms-count?field=other", headers=HX).status_code == 404
