"""The broadcasts pages: the upcoming broadcast edited field by field (htmx partials and 422s),
the weekly schedule, send now and test send, history, the detail page, progress and the CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.broadcasts.services import upcoming_broadcast
from app.extensions import db
from app.jobs import QUEUE_DEFAULT, get_queue
from app.models import (
    AuditLog,
    Broadcast,
    BroadcastSegment,
    BroadcastStatus,
    MessageStatus,
    ScheduleVersion,
    Setting,
    Step,
    utcnow,
)
from app.sends.stats import finish_sends
from app.settings.services import STAFF_NUMBERS_SETTING
from tests.factories import (
    BroadcastFactory,
    ContactFactory,
    OutboundMessageFactory,
    SegmentFactory,
)
from tests.support import HX

ZONE = ZoneInfo("America/Detroit")


@pytest.fixture
def upcoming(app):
    broadcast = BroadcastFactory(first_message="Hello <b>neighbours</b>", second_message=None)
    db.session.commit()
    return broadcast


def stats(**figures):
    base = dict(
        recipients=10,
        first_sent=9,
        second_sent=0,
        delivered=8,
        failed=1,
        failed_by_code=[["30006", 1]],
        replies=2,
        unsubscribes=1,
        cancelled_by_reply=0,
        segments_used=9,
        delivery_rate=0.8889,
        reply_rate=0.2,
        first_done=10,
        pending=0,
        by_status={"first": {}, "second": {}},
    )
    base.update(figures)
    return base


def started(n_days_ago: float = 1, status=BroadcastStatus.SENT, **fields):
    at = utcnow() - timedelta(days=n_days_ago)
    return BroadcastFactory(
        status=status,
        started_at=at,
        finished_at=at + timedelta(minutes=5) if status == BroadcastStatus.SENT else None,
        recipient_count=fields.pop("recipient_count", 10),
        stats=fields.pop("stats", stats()),
        stats_updated_at=utcnow(),
        **fields,
    )


# -- the index page -------------------------------------------------------------------------------
def test_index_shows_the_upcoming_card_schedule_and_history_escaped(viewer_client, upcoming):
    db.session.add(ScheduleVersion(tuesday=time(10, 0), default_batch_size=300))
    started(2, first_message="Old <script>news</script>")
    db.session.commit()
    response = viewer_client.get("/broadcasts/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert 'id="broadcasts-upcoming"' in html and 'id="broadcasts-schedule"' in html
    assert "Hello &lt;b&gt;neighbours&lt;/b&gt;" in html
    assert "Old &lt;script&gt;news&lt;/script&gt;" in html
    assert "America/Detroit (UTC" in html
    assert 'id="broadcasts-history-rows"' in html
    # Viewers read: fields are disabled and no edit endpoint is wired.
    assert "disabled" in html and 'hx-post="/broadcasts/upcoming/' not in html
    assert 'id="broadcasts-send-now"' not in html


def test_with_no_upcoming_broadcast_the_index_shows_a_draft_and_the_first_edit_creates_it(
    operator_client,
):
    assert upcoming_broadcast() is None
    response = operator_client.get("/broadcasts/")
    assert response.status_code == 200
    assert 'hx-post="/broadcasts/upcoming/first_message"' in response.get_data(as_text=True)
    assert upcoming_broadcast() is None  # a GET never writes
    saved = operator_client.post(
        "/broadcasts/upcoming/first_message", data={"first_message": "Hello"}, headers=HX
    )
    assert saved.status_code == 200
    assert upcoming_broadcast().first_message == "Hello"


def test_index_without_history_says_so(viewer_client, upcoming):
    html = viewer_client.get("/broadcasts/").get_data(as_text=True)
    assert "No broadcast has gone out yet" in html
    assert 'id="broadcasts-trend"' not in html


def test_trend_chart_is_inline_svg_without_style_attributes(viewer_client, upcoming):
    for i in range(25):
        started(30 - i, stats=stats(delivery_rate=0.9 + i / 1000, reply_rate=0.01 * i))
    db.session.commit()
    html = viewer_client.get("/broadcasts/").get_data(as_text=True)
    assert 'id="broadcasts-trend"' in html
    trend = html.split('id="broadcasts-trend"')[1].split("</div>")[0]
    assert trend.count("<svg") == 3
    assert trend.count("<circle") == 3 * 20  # the last 20 broadcasts only
    assert "style=" not in html and "<script>" not in html


# -- inline fields --------------------------------------------------------------------------------
def test_saving_a_field_returns_its_partial_with_saved_and_an_event(operator_client, upcoming):
    response = operator_client.post(
        "/broadcasts/upcoming/first_message",
        data={"first_message": "  Council meets tonight  "},
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<form id="broadcasts-field-first_message"')
    assert "<html" not in html and "Saved" in html
    assert response.headers["HX-Trigger"] == "broadcasts-changed"
    assert db.session.get(Broadcast, upcoming.id).first_message == "Council meets tonight"
    assert db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "broadcast.update"))


def test_saving_without_htmx_redirects_back_with_a_flash(operator_client, upcoming):
    response = operator_client.post("/broadcasts/upcoming/batch_size", data={"batch_size": "250"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/broadcasts/#broadcasts-field-batch_size")
    assert db.session.get(Broadcast, upcoming.id).batch_size == 250


@pytest.mark.parametrize(
    ("field", "data", "message"),
    [
        ("first_message", {"first_message": "   "}, "The first message cannot be empty."),
        ("first_message", {"first_message": "x" * 1601}, "at most 1,600 characters"),
        ("second_message", {"second_message": "y" * 1700}, "at most 1,600 characters"),
        ("delay", {"delay_minutes": "soon"}, "The delay must be a whole number."),
        ("delay", {"delay_minutes": "-5"}, "between 0 minutes and 7 days"),
        ("delay", {"delay_minutes": "20000"}, "between 0 minutes and 7 days"),
        ("batch_size", {"batch_size": "0"}, "between 1 and 10,000"),
        ("batch_size", {"batch_size": "10001"}, "between 1 and 10,000"),
        ("batch_size", {"batch_size": "lots"}, "The batch size must be a whole number."),
        ("run_at", {"run_date": "2030-01-01", "run_time": ""}, "Give both a date and a time"),
        ("run_at", {"run_date": "2020-01-01", "run_time": "09:00"}, "That time has passed"),
        ("run_at", {"run_date": "garbage", "run_time": "9"}, "Give both a date and a time"),
    ],
)
def test_bad_input_is_refused_at_the_field_and_nothing_is_saved(
    operator_client, upcoming, field, data, message
):
    before = {
        c: getattr(upcoming, c)
        for c in ("first_message", "second_message", "delay_seconds", "batch_size")
    }
    response = operator_client.post(f"/broadcasts/upcoming/{field}", data=data, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="broadcasts-field-{field}"' in html
    assert 'class="field-error"' in html and message in html
    assert 'aria-invalid="true"' in html
    # Every control marked invalid is described by the message on the page (date and time both).
    for tag in re.findall(r"<(?:input|select|textarea)[^>]*aria-invalid=\"true\"[^>]*>", html):
        described = re.search(r'aria-describedby="([^"]+)"', tag)
        assert described and f'id="{described[1]}"' in html, tag
    db.session.expire_all()
    after = db.session.get(Broadcast, upcoming.id)
    assert {c: getattr(after, c) for c in before} == before
    assert after.run_at_override is None
    assert not db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "broadcast.update"))


def test_a_refused_text_comes_back_as_typed_escaped(operator_client, upcoming):
    typed = "<b>" + "z" * 1600
    html = operator_client.post(
        "/broadcasts/upcoming/first_message", data={"first_message": typed}, headers=HX
    ).get_data(as_text=True)
    assert "&lt;b&gt;zzz" in html and "<b>zzz" not in html


def test_unknown_field_is_404_and_viewers_get_403(viewer_client, upcoming):
    assert viewer_client.post("/broadcasts/upcoming/status", headers=HX).status_code == 403
    response = viewer_client.post(
        "/broadcasts/upcoming/first_message", data={"first_message": "Hijack"}, headers=HX
    )
    assert response.status_code == 403
    assert db.session.get(Broadcast, upcoming.id).first_message == "Hello <b>neighbours</b>"


def test_unknown_field_is_404_for_operators(operator_client, upcoming):
    assert operator_client.post("/broadcasts/upcoming/status", headers=HX).status_code == 404


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/broadcasts/schedule", {"monday": "09:00", "default_batch_size": "10"}),
        ("/broadcasts/send-now", {}),
        ("/broadcasts/test-send", {}),
    ],
)
def test_viewers_cannot_change_anything(viewer_client, upcoming, path, data):
    assert viewer_client.post(path, data=data, headers=HX).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScheduleVersion)) == 0


def test_viewers_do_not_get_the_send_now_confirmation(viewer_client, upcoming):
    assert viewer_client.get("/broadcasts/send-now", headers=HX).status_code == 403


def test_message_counter_warns_about_ucs2_characters(operator_client, upcoming):
    response = operator_client.post(
        "/broadcasts/sms-count?field=first_message",
        data={"first_message": "Café ☕ tonight"},
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="broadcasts-first_message-count"' in html
    assert "UCS-2" in html and "☕" in html and 'id="broadcasts-first_message-ucs2"' in html
    plain = operator_client.post(
        "/broadcasts/sms-count?field=second_message", data={"second_message": "a" * 161}
    ).get_data(as_text=True)
    assert "GSM-7" in plain and "2 SMS" in plain and "ucs2" not in plain
    assert operator_client.post("/broadcasts/sms-count?field=other").status_code == 404


def test_the_page_shows_the_counter_for_the_saved_text(viewer_client, upcoming):
    upcoming.first_message = "Ünïcode ☃"
    db.session.commit()
    html = viewer_client.get("/broadcasts/").get_data(as_text=True)
    assert 'id="broadcasts-first_message-ucs2"' in html


def test_ratios_and_filler_are_saved(operator_client, upcoming):
    a, b, c = SegmentFactory(name="A"), SegmentFactory(name="B"), SegmentFactory(name="C")
    db.session.commit()
    response = operator_client.post(
        "/broadcasts/upcoming/segments",
        data={f"ratio_{a.id}": "40", f"ratio_{b.id}": "60", f"ratio_{c.id}": "", "filler": c.id},
        headers=HX,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="broadcasts-ratio-sum"' in html and ">100</output>" in html
    db.session.expire_all()
    links = {
        link.segment_id: (link.ratio, link.is_filler)
        for link in db.session.get(Broadcast, upcoming.id).segment_links
    }
    assert links == {a.id: (40, False), b.id: (60, False), c.id: (0, True)}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"A": "70", "B": "40"}, "The ratios add up to 110 %"),
        ({"A": "abc", "B": "10"}, "A: give a whole percentage."),
        ({"A": "150", "B": "0"}, "A: between 0 and 100 %."),
    ],
)
def test_bad_ratios_are_refused_and_the_typed_values_come_back(
    operator_client, upcoming, values, message
):
    segments = {name: SegmentFactory(name=name) for name in ("A", "B")}
    upcoming.segment_links.append(BroadcastSegment(segment=segments["A"], ratio=20, position=0))
    db.session.commit()
    data = {f"ratio_{segments[k].id}": v for k, v in values.items()}
    response = operator_client.post("/broadcasts/upcoming/segments", data=data, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<div id="broadcasts-segments-feedback"')
    assert message in html and 'id="broadcasts-segments-error"' in html
    # Only the feedback is swapped (the typed shares stay in their inputs); it names the fault.
    fault = "segments" if "add up" in message else f"ratio_{segments['A'].id}"
    assert f'data-invalid="{fault}"' in html
    db.session.expire_all()
    links = db.session.get(Broadcast, upcoming.id).segment_links
    assert [(link.segment_id, link.ratio) for link in links] == [(segments["A"].id, 20)]


def test_reschedule_sets_and_clears_the_one_off_time(operator_client, upcoming):
    day = (utcnow().astimezone(ZONE) + timedelta(days=3)).date()
    response = operator_client.post(
        "/broadcasts/upcoming/run_at",
        data={"run_date": day.isoformat(), "run_time": "14:15"},
        headers=HX,
    )
    assert response.status_code == 200
    db.session.expire_all()
    override = db.session.get(Broadcast, upcoming.id).run_at_override
    assert override.astimezone(ZONE).strftime("%Y-%m-%d %H:%M") == f"{day.isoformat()} 14:15"
    assert 'id="broadcasts-reschedule-clear"' in response.get_data(as_text=True)
    # The next-run region re-fetches itself and shows the one-off time.
    partial = operator_client.get("/broadcasts/next-run", headers=HX).get_data(as_text=True)
    assert partial.lstrip().startswith('<div id="broadcasts-next-run"')
    assert "One-off time" in partial and "2:15 PM" in partial
    cleared = operator_client.post(
        "/broadcasts/upcoming/run_at",
        data={"run_date": day.isoformat(), "run_time": "14:15", "clear": "1"},
        headers=HX,
    )
    assert cleared.status_code == 200
    db.session.expire_all()
    assert db.session.get(Broadcast, upcoming.id).run_at_override is None


def test_run_times_off_the_quarter_hour_are_refused(operator_client, upcoming):
    day = (utcnow().astimezone(ZONE) + timedelta(days=3)).date()
    response = operator_client.post(
        "/broadcasts/upcoming/run_at",
        data={"run_date": day.isoformat(), "run_time": "14:10"},
        headers=HX,
    )
    assert response.status_code == 422
    assert "15-minute steps" in response.get_data(as_text=True)


def test_next_run_without_htmx_goes_to_the_page(viewer_client, upcoming):
    assert viewer_client.get("/broadcasts/next-run").status_code == 302


def test_a_started_broadcast_cannot_be_edited(operator_client, upcoming):
    # The upcoming one started between page load and save: the next upcoming gets the edit.
    upcoming.status = BroadcastStatus.SENT
    upcoming.started_at = utcnow()
    db.session.commit()
    response = operator_client.post(
        "/broadcasts/upcoming/batch_size", data={"batch_size": "20"}, headers=HX
    )
    assert response.status_code == 200
    fresh = upcoming_broadcast()
    assert fresh.id != upcoming.id and fresh.batch_size == 20
    assert db.session.get(Broadcast, upcoming.id).batch_size == 100


# -- the weekly schedule --------------------------------------------------------------------------
def test_saving_the_schedule_adds_a_version_and_shows_history(operator_client, upcoming):
    db.session.add(ScheduleVersion(monday=time(9, 0), default_batch_size=100))
    db.session.commit()
    response = operator_client.post(
        "/broadcasts/schedule",
        data={"tuesday": "10:00", "thursday": "17:30", "default_batch_size": "500"},
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<article id="broadcasts-schedule"')
    assert response.headers["HX-Trigger"] == "broadcasts-changed"
    assert "Saved as a new version" in html and "History (2 versions)" in html
    versions = db.session.scalars(sa.select(ScheduleVersion).order_by(ScheduleVersion.id)).all()
    assert len(versions) == 2
    assert versions[-1].tuesday == time(10, 0) and versions[-1].monday is None
    assert versions[-1].default_batch_size == 500
    # The upcoming broadcast is planned on the new schedule.
    db.session.expire_all()
    planned = db.session.get(Broadcast, upcoming.id).scheduled_for.astimezone(ZONE)
    assert (planned.strftime("%A"), planned.strftime("%H:%M")) in {
        ("Tuesday", "10:00"),
        ("Thursday", "17:30"),
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"monday": "09:10", "default_batch_size": "10"}, "Times go in 15-minute steps"),
        ({"monday": "9 o'clock", "default_batch_size": "10"}, "Monday: choose a time"),
        ({"monday": "09:00", "default_batch_size": "many"}, "must be a whole number"),
        ({"monday": "09:00", "default_batch_size": "0"}, "between 1 and 10,000"),
    ],
)
def test_a_bad_schedule_is_refused_with_a_message_and_not_saved(operator_client, data, message):
    response = operator_client.post("/broadcasts/schedule", data=data, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html and 'id="broadcasts-schedule"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScheduleVersion)) == 0


def test_schedule_without_htmx_redirects(operator_client):
    response = operator_client.post(
        "/broadcasts/schedule", data={"friday": "09:45", "default_batch_size": "10"}
    )
    assert response.status_code == 302
    assert db.session.scalar(sa.select(ScheduleVersion.friday)) == time(9, 45)


# -- send now and test send -----------------------------------------------------------------------
def test_send_now_confirmation_shows_the_recipient_count(operator_client, upcoming):
    segment = SegmentFactory(name="Everyone")
    ContactFactory.create_batch(7)
    upcoming.segment_links.append(BroadcastSegment(segment=segment, ratio=50, position=0))
    upcoming.batch_size = 10
    db.session.commit()
    partial = operator_client.get("/broadcasts/send-now", headers=HX)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in html
    assert 'id="broadcasts-send-now-count">5<' in html
    page = operator_client.get("/broadcasts/send-now").get_data(as_text=True)
    assert "<html" in page and "Send to 5 now" in page


def test_send_now_starts_the_broadcast_and_redirects_to_it(operator_client, upcoming, app):
    segment = SegmentFactory(name="Everyone")
    ContactFactory.create_batch(4)
    upcoming.segment_links.append(BroadcastSegment(segment=segment, ratio=100, position=0))
    db.session.commit()
    response = operator_client.post("/broadcasts/send-now", headers=HX)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/broadcasts/{upcoming.id}"
    db.session.expire_all()
    sent = db.session.get(Broadcast, upcoming.id)
    assert sent.status == BroadcastStatus.SENDING and sent.recipient_count == 4
    assert len(get_queue(app, "sending").get_jobs()) >= 1
    detail = operator_client.get(f"/broadcasts/{upcoming.id}").get_data(as_text=True)
    assert "is sending to 4 recipients" in detail


def test_send_now_refuses_during_the_cool_down_and_says_when(operator_client, upcoming):
    started(n_days_ago=1 / 24)  # an hour ago
    db.session.commit()
    confirm = operator_client.get("/broadcasts/send-now", headers=HX).get_data(as_text=True)
    assert "less than 2 hours ago" in confirm and "broadcasts-send-now-go" not in confirm
    response = operator_client.post("/broadcasts/send-now", headers=HX)
    assert response.status_code == 422
    assert "Send now is possible again in" in response.get_data(as_text=True)
    assert db.session.get(Broadcast, upcoming.id).status == BroadcastStatus.UPCOMING


def test_send_now_refuses_close_to_a_one_off_run_time(operator_client, upcoming):
    upcoming.run_at_override = utcnow() + timedelta(minutes=45)
    db.session.commit()
    response = operator_client.post("/broadcasts/send-now", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "already rescheduled to run in" in html and "clear the one-off run time" in html
    assert db.session.get(Broadcast, upcoming.id).status == BroadcastStatus.UPCOMING


def test_send_now_refuses_an_empty_first_message(operator_client, upcoming):
    upcoming.first_message = ""
    db.session.commit()
    response = operator_client.post("/broadcasts/send-now")
    assert response.status_code == 422
    assert "Write the first message before sending." in response.get_data(as_text=True)


def test_test_send_queues_a_job_for_the_staff_numbers(operator_client, upcoming, app):
    db.session.add(Setting(key=STAFF_NUMBERS_SETTING, value=["+13135550101", "+13135550102"]))
    db.session.commit()
    response = operator_client.post("/broadcasts/test-send", headers=HX)
    assert response.status_code == 200
    assert "Test send queued to 2 staff numbers." in response.get_data(as_text=True)
    jobs = get_queue(app, QUEUE_DEFAULT).get_jobs()
    assert [job.func_name for job in jobs] == ["app.jobs.broadcasts.test_send_broadcast"]
    assert jobs[0].args[0] == upcoming.id


def test_test_send_without_staff_numbers_says_where_to_add_them(operator_client, upcoming, app):
    response = operator_client.post("/broadcasts/test-send", headers=HX)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#flash"
    assert "Settings page" in response.get_data(as_text=True)
    assert get_queue(app, QUEUE_DEFAULT).get_jobs() == []


# -- history --------------------------------------------------------------------------------------
def test_history_shows_stored_figures_and_show_more_appends_rows(viewer_client, upcoming):
    rows = [started(i + 1, stats=stats(recipients=100 + i)) for i in range(14)]
    db.session.commit()
    html = viewer_client.get("/broadcasts/").get_data(as_text=True)
    assert html.count('id="broadcasts-history-') - html.count("broadcasts-history-more") >= 10
    assert f'id="broadcasts-history-{rows[0].id}"' in html
    assert f'id="broadcasts-history-{rows[13].id}"' not in html
    assert "88.9 %" in html
    more = viewer_client.get("/broadcasts/history?page=2", headers=HX)
    partial = more.get_data(as_text=True)
    assert more.status_code == 200 and "<html" not in partial
    assert partial.lstrip().startswith("<tr")
    assert f'id="broadcasts-history-{rows[13].id}"' in partial
    assert "broadcasts-history-more" not in partial  # the last page
    assert viewer_client.get("/broadcasts/history?page=2").status_code == 302


# -- one broadcast --------------------------------------------------------------------------------
@pytest.fixture
def finished(app):
    broadcast = started(1, first_message="Vote <here>")
    contacts = ContactFactory.create_batch(3)
    contacts[1].phone = "+13135550000"
    contacts[2].name = '=HYPERLINK("http://evil")'
    OutboundMessageFactory(
        broadcast=broadcast, contact=contacts[0], delivered=True, provider_sid="SM1"
    )
    OutboundMessageFactory(
        broadcast=broadcast,
        contact=contacts[1],
        undelivered=True,
        provider_sid="SM2",
        error_code="30006",
        error_message="Landline or unreachable carrier",
    )
    OutboundMessageFactory(
        broadcast=broadcast,
        contact=contacts[2],
        failed=True,
        error_code="21610",
        error_message="=cmd|' /C",
    )
    OutboundMessageFactory(
        broadcast=broadcast,
        contact=contacts[0],
        step=Step.SECOND,
        status=MessageStatus.CANCELLED,
        cancel_reason="replied",
    )
    db.session.commit()
    return broadcast


def test_detail_page_shows_funnel_failures_and_recipients(viewer_client, finished):
    response = viewer_client.get(f"/broadcasts/{finished.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Vote &lt;here&gt;" in html
    assert f'id="broadcasts-funnel-{finished.id}"' in html
    assert f'id="broadcasts-failures-{finished.id}"' in html and "30006" in html
    assert "+13135550000" in html and "Landline or unreachable carrier" in html
    assert 'hx-trigger="every 2s"' not in html  # finished: nothing polls
    assert f"/broadcasts/{finished.id}/outcomes.csv" in html


def test_recipients_filter_by_status_and_search_by_phone(viewer_client, finished):
    url = f"/broadcasts/{finished.id}/recipients"
    html = viewer_client.get(f"{url}?status=undelivered", headers=HX).get_data(as_text=True)
    assert "+13135550000" in html and "<html" not in html
    assert "Landline" in html and "SM1" not in html
    assert html.count("<tr id=") == 1
    problems = viewer_client.get(f"{url}?status=problems", headers=HX).get_data(as_text=True)
    assert problems.count("<tr id=") == 3
    found = viewer_client.get(f"{url}?q=(313) 555-0000", headers=HX).get_data(as_text=True)
    assert found.count("<tr id=") == 1 and "+13135550000" in found
    partial = viewer_client.get(f"{url}?q=5550000", headers=HX).get_data(as_text=True)
    assert partial.count("<tr id=") == 1
    none = viewer_client.get(f"{url}?q=zzz", headers=HX).get_data(as_text=True)
    assert "No message matches." in none
    # Anything in the query string is safe.
    weird = viewer_client.get(f"{url}?status=drop&after=1;--&q=%27", headers=HX)
    assert weird.status_code == 200
    assert viewer_client.get(url).status_code == 302


def test_recipients_page_without_counting(viewer_client, app):
    broadcast = started(1)
    for contact in ContactFactory.create_batch(55):
        OutboundMessageFactory(broadcast=broadcast, contact=contact, delivered=True)
    db.session.commit()
    url = f"/broadcasts/{broadcast.id}/recipients"
    first = viewer_client.get(url, headers=HX).get_data(as_text=True)
    assert first.count("<tr id=") == 50
    after = first.split('id="broadcasts-recipients-next"')[0].rsplit("after=", 1)[1].split('"')[0]
    second = viewer_client.get(f"{url}?after={after}", headers=HX).get_data(as_text=True)
    assert second.count("<tr id=") == 5 and "broadcasts-recipients-next" not in second
    assert "First page" in second


def test_outcomes_csv_says_who_did_not_get_it_and_why_formula_safe(viewer_client, finished):
    response = viewer_client.get(f"/broadcasts/{finished.id}/outcomes.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:7] == ["phone", "name", "step", "body", "status", "got it", "why not"]
    by_status = {r[4]: r for r in rows[1:]}
    assert by_status["delivered"][5] == "yes"
    assert by_status["delivered"][2:4] == ["first", "Vote <here>"]  # the text each was sent
    assert by_status["undelivered"][0] == "+13135550000"  # a phone stays a phone
    assert by_status["undelivered"][6] == "Landline or unreachable carrier"
    assert by_status["failed"][1] == '\'=HYPERLINK("http://evil")'
    assert by_status["failed"][6] == "'=cmd|' /C"
    assert by_status["cancelled"][2] == "follow-up"
    assert by_status["cancelled"][6] == "cancelled: replied"
    only = viewer_client.get(f"/broadcasts/{finished.id}/outcomes.csv?status=problems")
    assert len(list(csv.reader(io.StringIO(only.get_data(as_text=True))))) == 4


def test_upcoming_and_missing_broadcasts_have_no_detail_page(viewer_client, upcoming):
    assert viewer_client.get(f"/broadcasts/{upcoming.id}").status_code == 404
    assert viewer_client.get("/broadcasts/999999").status_code == 404
    assert viewer_client.get("/broadcasts/999999/outcomes.csv").status_code == 404


def test_progress_polls_while_sending_and_stops_with_the_figures_when_done(viewer_client):
    broadcast = started(0.01, status=BroadcastStatus.SENDING, stats=None)
    contacts = ContactFactory.create_batch(2)
    queued = OutboundMessageFactory(broadcast=broadcast, contact=contacts[0])
    OutboundMessageFactory(broadcast=broadcast, contact=contacts[1], delivered=True)
    db.session.commit()
    url = f"/broadcasts/{broadcast.id}/progress"
    live = viewer_client.get(url, headers=HX)
    html = live.get_data(as_text=True)
    assert live.status_code == 200 and "<html" not in html
    assert 'hx-trigger="every 2s"' in html
    assert f'id="broadcasts-progress-bar-{broadcast.id}" value="1" max="2"' in html
    page = viewer_client.get(f"/broadcasts/{broadcast.id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page

    queued.status = "sent"
    queued.provider_sid = "SMy"
    db.session.commit()
    broadcast.stats_updated_at = utcnow() - timedelta(seconds=10)  # older than the live age
    db.session.commit()
    # A GET never writes: fresh figures on the page, the broadcast left for the tick to finish.
    settling = viewer_client.get(url, headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in settling and "Everything has gone out" in settling
    assert f'id="broadcasts-progress-bar-{broadcast.id}" value="2" max="2"' in settling
    db.session.expire_all()
    assert db.session.get(Broadcast, broadcast.id).status == BroadcastStatus.SENDING
    assert finish_sends() == 1
    done = viewer_client.get(url, headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' not in done
    assert f'id="broadcasts-done-{broadcast.id}"' in done
    assert f'id="broadcasts-funnel-{broadcast.id}"' in done
    assert viewer_client.get(url).status_code == 302


def test_the_index_shows_a_sending_broadcast_live(viewer_client, upcoming):
    broadcast = started(0.01, status=BroadcastStatus.SENDING, stats=stats(pending=3, first_done=7))
    contact = ContactFactory()
    OutboundMessageFactory(broadcast=broadcast, contact=contact)
    db.session.commit()
    html = viewer_client.get("/broadcasts/").get_data(as_text=True)
    assert f'id="broadcasts-progress-{broadcast.id}"' in html
    assert 'hx-trigger="every 2s"' in html and "compact=1" in html
