"""The audit log page: newest first, searchable, filterable, a full page or an htmx partial."""

from __future__ import annotations

from app.audit.services import record_audit
from app.extensions import db
from tests.support import HX, by_id


def _entries(admin, count=3):
    for i in range(count):
        record_audit(
            "user_update",
            user=admin,
            object_type="users",
            object_id=i,
            summary=f"Changed user {i}",
            ip_address="203.0.113.7",
        )
    record_audit("seed_demo", actor="cli", summary="Demo data")
    db.session.commit()


def test_full_page_lists_entries_newest_first(admin_client, admin):
    _entries(admin)
    page = admin_client.get("/audit/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and 'id="audit-rows"' in html
    assert html.index("Demo data") < html.index("Changed user 2") < html.index("Changed user 0")
    assert "203.0.113.7" in html
    assert "Vary" in page.headers and "HX-Request" in page.headers["Vary"]


def test_htmx_search_returns_only_the_rows_partial(admin_client, admin):
    _entries(admin)
    response = admin_client.get("/audit/?q=user+1", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert "Changed user 1" in html and "Changed user 2" not in html


def test_entries_and_the_action_filter_read_as_labels_and_filter_by_the_stored_name(
    admin_client, admin
):
    for action in ("broadcast.start", "api_token.create", "periodic_job.run_now", "odd_new.thing"):
        record_audit(action, user=admin, summary=f"did {action}")
    db.session.commit()
    html = admin_client.get("/audit/").get_data(as_text=True)
    rows = by_id(html, "audit-rows")
    for label in ("Broadcast started", "API token created", "Job run started by hand"):
        assert f">{label}</strong>" in rows
    assert ">Odd new thing</strong>" in rows  # one not listed: its name, tidied
    assert "broadcast.start</strong>" not in rows and "api token.create" not in rows
    # The dropdown shows labels, sorted by them, and keeps the stored name as each value.
    options = by_id(html, "audit-action")
    assert '<option value="api_token.create" >API token created</option>' in options
    assert '<option value="periodic_job.run_now" >Job run started by hand</option>' in options
    assert options.index("API token created") < options.index("Broadcast started")
    only = admin_client.get("/audit/?action=api_token.create", headers=HX).get_data(as_text=True)
    assert "did api_token.create" in only and "did broadcast.start" not in only


def test_filter_by_action(admin_client, admin):
    _entries(admin)
    html = admin_client.get("/audit/?action=seed_demo").get_data(as_text=True)
    assert "Demo data" in html and "Changed user" not in html


def test_boosted_and_history_restore_requests_get_the_full_page(admin_client, admin):
    _entries(admin)
    for header in ("HX-Boosted", "HX-History-Restore-Request"):
        html = admin_client.get("/audit/", headers={**HX, header: "true"}).get_data(as_text=True)
        assert "<html" in html


def test_audit_log_paginates(admin_client, admin):
    for i in range(60):
        record_audit("user_update", user=admin, summary=f"entry {i:02d}")
    db.session.commit()
    first = admin_client.get("/audit/").get_data(as_text=True)
    assert "entry 59" in first and "entry 05" not in first and "Page 1 of 2" in first
    second = admin_client.get("/audit/?page=2").get_data(as_text=True)
    assert "entry 05" in second


def test_message_content_is_escaped(admin_client, admin):
    record_audit("user_update", user=admin, summary="<script>alert(1)</script>")
    db.session.commit()
    html = admin_client.get("/audit/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_odd_page_numbers_and_extra_arguments_never_break_the_list(admin_client, admin):
    for i in range(60):
        record_audit("user_update", user=admin, summary=f"entry {i:02d}")
    db.session.commit()
    for query in (
        "page=abc",
        "page=-1",
        "page=0",
        "page=999999999999999999",
        "page=1.5",
        "endpoint=x",
        "_external=1&_anchor=x",
        "q=%25&action=nope",
    ):
        response = admin_client.get(f"/audit/?{query}")
        assert response.status_code == 200, query
    html = admin_client.get("/audit/?q=entry&endpoint=x").get_data(as_text=True)
    assert 'href="/audit/?page=2&amp;q=entry"' in html
