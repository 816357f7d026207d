"""The Missive sidebar in-process: framing headers, the frame's session cookie, sign-in and an
expired session inside the frame, CSRF, roles on every sidebar route, and the panels."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.models import AuditLog, Campaign, MissiveConversation, Role, utcnow
from tests.conftest import PASSWORD
from tests.factories import ContactFactory, InboundMessageFactory, OutboundMessageFactory
from tests.support import HX, by_id

SIDEBAR_PAGES = ["/sidebar/broadcasts", "/sidebar/campaigns", "/sidebar/conversation"]


def sidebar_sign_in(client, user, password: str = PASSWORD, next_url: str = ""):
    return client.post(
        "/sidebar/login", data={"email": user.email, "password": password, "next": next_url}
    )


def _cookie_header(response, name: str = "session") -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert headers, response.headers
    return headers[-1]


def _frame_ancestors(response) -> str:
    match = re.search(r"frame-ancestors ([^;]+)", response.headers["Content-Security-Policy"])
    assert match
    return match.group(1).strip()


# -- headers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/sidebar/login", *SIDEBAR_PAGES])
def test_sidebar_pages_may_be_framed_by_missive_only(app: Flask, client, viewer, path):
    if path != "/sidebar/login":
        sidebar_sign_in(client, viewer)
    response = client.get(path)
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    assert _frame_ancestors(response) == app.config["SIDEBAR_FRAME_ANCESTORS"]
    assert "https://mail.missiveapp.com" in _frame_ancestors(response)


def test_only_sidebar_pages_allow_missives_script(app: Flask, viewer_client):
    missive_js = app.config["MISSIVE_JS_URL"]
    assert missive_js == "https://integrations.missiveapp.com/missive.js"
    sidebar = viewer_client.get("/sidebar/conversation")
    assert f"script-src 'self' {missive_js};" in sidebar.headers["Content-Security-Policy"]
    assert f'<script src="{missive_js}" defer></script>' in sidebar.text
    dashboard = viewer_client.get("/contacts/")
    assert "script-src 'self';" in dashboard.headers["Content-Security-Policy"]
    assert missive_js not in dashboard.text


@pytest.mark.parametrize("path", ["/", "/broadcasts/", "/campaigns/", "/auth/login"])
def test_dashboard_pages_refuse_to_be_framed(viewer_client, path):
    response = viewer_client.get(path, follow_redirects=True)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert _frame_ancestors(response) == "'none'"


def test_sidebar_sign_in_sets_a_partitioned_cross_site_cookie(client, viewer):
    response = sidebar_sign_in(client, viewer, next_url="/sidebar/campaigns")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sidebar/campaigns"
    cookie = _cookie_header(response)
    assert "SameSite=None" in cookie
    assert "; Secure" in cookie
    assert "; Partitioned" in cookie
    assert "HttpOnly" in cookie
    # No remember-me cookie from the frame: it would not be partitioned.
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember")]


def test_dashboard_sign_in_keeps_a_lax_cookie(client, viewer):
    response = client.post("/auth/login", data={"email": viewer.email, "password": PASSWORD})
    cookie = _cookie_header(response)
    assert "SameSite=Lax" in cookie
    assert "Partitioned" not in cookie


def test_a_frame_session_keeps_its_attributes_on_the_features_endpoints(client, operator):
    """The sidebar's forms post to the features' endpoints (/contacts/…): the session cookie
    they write back (a flash here) keeps the frame's attributes, or the browser would refuse
    it inside the frame."""
    contact = ContactFactory()
    db.session.commit()
    sidebar_sign_in(client, operator)
    response = client.post(f"/contacts/{contact.id}/unsubscribe", data={"reason": "asked"})
    assert response.status_code == 302
    cookie = _cookie_header(response)
    assert "SameSite=None" in cookie and "Partitioned" in cookie and "Secure" in cookie


def test_the_wrong_password_in_the_frame_says_so_and_is_audited(client, viewer):
    response = sidebar_sign_in(client, viewer, password="wrong")
    assert response.status_code == 401
    assert "do not match an active account" in response.text
    assert "X-Frame-Options" not in response.headers
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditLog.action == "login_failed"))


def test_sign_in_only_comes_back_into_the_sidebar(client, viewer):
    response = sidebar_sign_in(client, viewer, next_url="/broadcasts/")
    assert response.headers["Location"] == "/sidebar/broadcasts"
    response = sidebar_sign_in(client, viewer, next_url="//evil.example/sidebar/")
    assert response.headers["Location"] == "/sidebar/broadcasts"


def test_signing_out_in_the_frame_shows_the_sidebars_sign_in(client, viewer):
    sidebar_sign_in(client, viewer)
    response = client.post("/sidebar/logout")
    assert response.headers["Location"] == "/sidebar/login"
    assert client.get("/sidebar/broadcasts").status_code == 302


# -- an expired session inside the frame -----------------------------------------------------------
@pytest.mark.parametrize("path", SIDEBAR_PAGES)
def test_an_expired_session_shows_the_sidebars_own_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sidebar/login?next={path}"
    login = client.get(response.headers["Location"])
    assert login.status_code == 200
    assert by_id(login.text, "auth-login-form")
    assert "X-Frame-Options" not in login.headers


def test_an_expired_sessions_htmx_request_sends_the_frame_to_the_sidebar_sign_in(client):
    """From a sidebar page, even a request to a feature's endpoint answers 401 with
    HX-Redirect to the sidebar's sign-in (never the dashboard's, which the frame refuses)."""
    headers = {**HX, "HX-Current-URL": "http://127.0.0.1:5000/sidebar/broadcasts"}
    response = client.post("/broadcasts/upcoming/first_message", headers=headers)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/sidebar/login?next=/sidebar/broadcasts"
    response = client.get("/sidebar/conversation/contact?selected=0", headers=HX)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/sidebar/login?next=")
    # The dashboard's own htmx requests still go to the dashboard's sign-in.
    response = client.post("/broadcasts/upcoming/first_message", headers=HX)
    assert response.headers["HX-Redirect"].startswith("/auth/login?next=")


def test_csrf_is_checked_on_the_frames_forms(app: Flask, client, viewer, csrf_enabled):
    page = client.get("/sidebar/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token, page.text
    refused = client.post("/sidebar/login", data={"email": viewer.email, "password": PASSWORD})
    assert refused.status_code == 400
    assert "expired or did not come from this site" in refused.text
    signed_in = client.post(
        "/sidebar/login",
        data={"email": viewer.email, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed_in.status_code == 302
    page = client.get("/sidebar/broadcasts")
    assert '"X-CSRFToken": "' in page.text  # every htmx request of the panel carries it


# -- roles -------------------------------------------------------------------------------------------
def _sidebar_rules(app: Flask):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("sidebar.")]


def test_every_sidebar_route_is_known_here(app: Flask):
    assert {r.endpoint for r in _sidebar_rules(app)} == {
        "sidebar.index",
        "sidebar.login",
        "sidebar.create_session",
        "sidebar.logout",
        "sidebar.broadcasts",
        "sidebar.past_broadcasts",
        "sidebar.campaigns",
        "sidebar.past_campaigns",
        "sidebar.campaign_estimate",
        "sidebar.new_campaign",
        "sidebar.edit_campaign",
        "sidebar.conversation",
        "sidebar.conversation_panel",
    }


READ_ROUTES = [
    ("/sidebar/", 302),
    ("/sidebar/broadcasts", 200),
    ("/sidebar/campaigns", 200),
    ("/sidebar/conversation", 200),
]
PARTIAL_ROUTES = [
    "/sidebar/broadcasts/past?page=1",
    "/sidebar/campaigns/past?page=1",
    "/sidebar/conversation/contact?selected=0",
]
OPERATOR_ROUTES = ["/sidebar/campaigns/new", "/sidebar/campaigns/{id}/edit"]


@pytest.fixture
def draft_campaign() -> Campaign:
    campaign = Campaign(title="Sidebar draft", first_message="Hello")
    db.session.add(campaign)
    db.session.commit()
    return campaign


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.ADMIN])
def test_roles_apply_on_every_sidebar_route_as_on_the_dashboard(
    client, make_user, draft_campaign, role
):
    user = make_user(role, email=f"{role.value}-sidebar@example.org")
    sidebar_sign_in(client, user)
    for path, status in READ_ROUTES:
        assert client.get(path).status_code == status, path
    for path in PARTIAL_ROUTES:
        assert client.get(path, headers=HX).status_code == 200, path
        assert client.get(path).status_code == 302, path  # not a page of its own
    estimate = f"/sidebar/campaigns/{draft_campaign.id}/estimate"
    assert client.get(estimate, headers=HX).status_code == 200
    for template in OPERATOR_ROUTES:
        path = template.format(id=draft_campaign.id)
        expected = 403 if role is Role.VIEWER else 200
        assert client.get(path).status_code == expected, (role, path)
    # The panels' buttons post to the features' endpoints: the same roles hold there.
    posted = client.post("/broadcasts/upcoming/first_message", data={"first_message": "Hi"})
    assert posted.status_code == (403 if role is Role.VIEWER else 302)
    assert client.post("/sidebar/logout").status_code == 302


def test_a_viewer_reads_the_panels_without_edit_controls(viewer_client, draft_campaign):
    page = viewer_client.get("/sidebar/broadcasts").text
    assert "You can read this; operators edit it." in page
    assert 'id="broadcasts-send-now"' not in page
    page = viewer_client.get("/sidebar/campaigns").text
    assert 'id="sidebar-campaigns-new"' not in page
    assert f'id="campaigns-edit-{draft_campaign.id}"' not in page


# -- the panels -------------------------------------------------------------------------------------
def test_the_broadcast_panel_reuses_the_dashboards_fields(operator_client):
    page = operator_client.get("/sidebar/broadcasts").text
    for dom_id in (
        "broadcasts-field-first_message",
        "broadcasts-field-second_message",
        "broadcasts-field-batch_size",
        "broadcasts-field-run_at",
        "broadcasts-next-run",
        "broadcasts-schedule-form",
        "broadcasts-send-now",
        "sidebar-tab-broadcasts",
    ):
        assert by_id(page, dom_id), dom_id
    # Send now comes back to the sidebar once it started.
    assert "/broadcasts/send-now?next=/sidebar/broadcasts" in page
    confirm = operator_client.get("/broadcasts/send-now?next=/sidebar/broadcasts", headers=HX)
    assert 'name="next" value="/sidebar/broadcasts"' in confirm.text or "refusal" in confirm.text


def test_the_campaign_form_in_the_sidebar_comes_back_to_the_panel(operator_client):
    page = operator_client.get("/sidebar/campaigns/new").text
    assert by_id(page, "campaigns-form")
    assert 'name="next" value="/sidebar/campaigns"' in page


def _conversation(contact, missive_id="conv-1"):
    conversation = MissiveConversation(missive_id=missive_id, contact=contact, phone=contact.phone)
    db.session.add(conversation)
    db.session.commit()
    return conversation


def test_the_conversation_panel_asks_for_one_conversation(viewer_client):
    for selected in ("0", "many"):
        html = viewer_client.get(
            f"/sidebar/conversation/contact?selected={selected}", headers=HX
        ).text
        assert "Select one conversation" in by_id(html, "sidebar-conversation-select").text


def test_the_conversation_panel_shows_the_contact_its_messages_and_replies(viewer_client):
    contact = ContactFactory(phone="+13135550101", name="Ada")
    out = OutboundMessageFactory(contact=contact, body="Polls open at 7", step="first")
    InboundMessageFactory(body="Thanks!", reply_to=out)
    db.session.commit()
    _conversation(contact, "conv-ada")
    html = viewer_client.get(
        "/sidebar/conversation/contact?selected=1&conversation=conv-ada", headers=HX
    ).text
    assert by_id(html, "sidebar-contact")
    assert "Polls open at 7" in html and "Thanks!" in html
    assert "first message" in html
    assert 'id="contacts-toggle-form"' not in html  # a viewer reads


def test_the_conversation_panel_finds_the_contact_by_its_messages_numbers(
    app: Flask, operator_client
):
    contact = ContactFactory(phone="+13135550102")
    db.session.commit()
    own = app.config["MISSIVE_FROM_NUMBER"] or "+13135559999"
    html = operator_client.get(
        "/sidebar/conversation/contact?selected=1&conversation=unknown-conv"
        f"&phone={own}&phone=(313) 555-0102",
        headers=HX,
    ).text
    assert f'data-contact="{contact.id}"' in html
    assert by_id(html, "contacts-unsubscribe")
    unknown = operator_client.get(
        "/sidebar/conversation/contact?selected=1&conversation=x&phone=+13135550199", headers=HX
    ).text
    assert "No contact has this number" in unknown


def test_unsubscribing_from_the_sidebar_needs_a_reason_and_is_audited(operator_client):
    contact = ContactFactory(phone="+13135550103")
    db.session.commit()
    url = f"/contacts/{contact.id}/unsubscribe"
    refused = operator_client.post(url, data={"reason": ""}, headers=HX)
    assert refused.status_code == 422
    assert "Say why, for the audit log." in by_id(refused.text, "contacts-status-card").text
    done = operator_client.post(url, data={"reason": "asked in Missive"}, headers=HX)
    assert done.status_code == 200
    card = by_id(done.text, "contacts-status-card")
    assert "Unsubscribed" in by_id(done.text, "contacts-status-done").text
    assert by_id(done.text, "contacts-resubscribe")  # the card now offers the way back
    assert "hx-post" in card
    db.session.refresh(contact)
    assert contact.unsubscribed and contact.unsubscribe_reason == "asked in Missive"
    audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "contact_unsubscribe"))
    assert audit.details["reason"] == "asked in Missive"
    assert utcnow() >= contact.unsubscribed_at


def test_a_refusal_inside_the_frame_is_a_sidebar_page(viewer_client):
    """A viewer opening an operator's page in the frame: a 403 in the sidebar's layout (tabs,
    frameable, a way back into the sidebar), never the dashboard's page the frame refuses."""
    response = viewer_client.get("/sidebar/campaigns/new")
    assert response.status_code == 403
    assert "This needs the operator role." in response.text
    assert by_id(response.text, "sidebar-tab-broadcasts")
    assert 'href="/sidebar/broadcasts">' in response.text
    assert "X-Frame-Options" not in response.headers
    missing = viewer_client.get("/sidebar/campaigns/999999/edit")
    assert missing.status_code == 403  # the role is checked first, as on the dashboard


def test_past_broadcasts_show_more_pages_through_their_figures_and_texts(viewer_client):
    from app.models import Broadcast, BroadcastStatus

    for n in range(7):
        db.session.add(
            Broadcast(
                first_message=f"Past text {n}",
                status=BroadcastStatus.SENT,
                started_at=utcnow(),
                stats={"recipients": 10 + n},
            )
        )
    db.session.commit()
    page = viewer_client.get("/sidebar/broadcasts").text
    assert page.count('class="sidebar-send"') == 5
    assert by_id(page, "sidebar-broadcasts-more-button")
    more = viewer_client.get("/sidebar/broadcasts/past?page=2", headers=HX).text
    assert more.count('class="sidebar-send"') == 2
    assert "sidebar-broadcasts-more-button" not in more
    assert "Past text 0" in more and "Recipients" in more
    assert by_id(page, "sidebar-last-broadcast")


def test_a_browser_that_refuses_the_frames_cookie_is_told_so_not_asked_again(app: Flask, viewer):
    """The sign-in succeeded but the next page comes without the cookie (a browser blocking
    it in frames): the sign-in page explains, rather than a silent sign-in loop."""
    signed_in = app.test_client()
    response = sidebar_sign_in(signed_in, viewer, next_url="/sidebar/campaigns")
    assert response.headers["Location"] == "/sidebar/campaigns"
    cookieless = app.test_client()  # the cookie never comes back
    again = cookieless.get(
        "/sidebar/campaigns", headers={"Referer": "http://localhost/sidebar/login?next=x"}
    )
    assert again.headers["Location"] == "/sidebar/login?next=/sidebar/campaigns&cookie=refused"
    page = cookieless.get(again.headers["Location"])
    assert "did not keep the sign-in inside Missive" in by_id(page.text, "sidebar-cookie-refused")
    plain = cookieless.get("/sidebar/campaigns")
    assert "cookie=" not in plain.headers["Location"]


def test_deleting_a_campaign_from_the_sidebar_comes_back_to_the_panel(
    operator_client, draft_campaign
):
    response = operator_client.post(
        f"/campaigns/{draft_campaign.id}/delete", data={"next": "/sidebar/campaigns"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/sidebar/campaigns"
    left = sa.select(sa.func.count()).select_from(Campaign).where(Campaign.id == draft_campaign.id)
    assert db.session.scalar(left) == 0
    page = operator_client.get("/sidebar/campaigns").text
    assert "Deleted campaign Sidebar draft." in by_id(page, "flash").text


def test_a_next_that_leaves_the_site_is_ignored(operator_client, draft_campaign):
    response = operator_client.post(
        f"/campaigns/{draft_campaign.id}/delete", data={"next": "//evil.example/x"}
    )
    assert response.headers["Location"] == "/campaigns/"


def test_an_htmx_request_from_a_sidebar_page_writes_the_frames_cookie(
    operator_client, draft_campaign
):
    """Named by HX-Current-URL (a sidebar page), even a session begun elsewhere is written back
    with the frame's attributes; the same request from a dashboard page keeps Lax."""
    from_sidebar = {**HX, "HX-Current-URL": "https://broadcaster.example/sidebar/campaigns"}
    response = operator_client.post(
        f"/campaigns/{draft_campaign.id}/delete",
        data={"next": "/sidebar/campaigns"},
        headers=from_sidebar,
    )
    assert response.headers["HX-Redirect"] == "/sidebar/campaigns"
    cookie = _cookie_header(response)
    assert "SameSite=None" in cookie and "Partitioned" in cookie
    other = Campaign(title="Another", first_message="Hi")
    db.session.add(other)
    db.session.commit()
    from_dashboard = {**HX, "HX-Current-URL": "https://broadcaster.example/campaigns/"}
    response = operator_client.post(f"/campaigns/{other.id}/delete", headers=from_dashboard)
    assert "SameSite=Lax" in _cookie_header(response)


def test_an_expired_session_comes_back_to_the_panel_it_was_on(client):
    """Sign-in returns to the page the person was on: the panel an htmx request came from, or
    the first panel after a form posted to the sidebar (a POST cannot be repeated)."""
    panel = {**HX, "HX-Current-URL": "http://127.0.0.1/sidebar/conversation"}
    response = client.get("/sidebar/conversation/contact?selected=0", headers=panel)
    assert response.headers["HX-Redirect"] == "/sidebar/login?next=/sidebar/conversation"
    response = client.post("/sidebar/logout")
    assert response.headers["Location"] == "/sidebar/login?next=/sidebar/"


def test_outside_missive_the_contact_panel_offers_a_look_up_by_number(operator_client):
    page = operator_client.get("/sidebar/conversation").text
    outside = by_id(page, "sidebar-conversation-outside")
    assert "needs Missive's sidebar" in outside.text
    assert by_id(page, "sidebar-lookup-form")
    contact = ContactFactory(phone="+13135550131", name="Cy")
    db.session.commit()
    found = operator_client.get(
        "/sidebar/conversation/contact?lookup=1&phone=(313) 555-0131", headers=HX
    )
    assert found.status_code == 200
    assert f'data-contact="{contact.id}"' in found.text
    assert by_id(found.text, "contacts-unsubscribe")  # the same status card as from Missive
    unknown = operator_client.get(
        "/sidebar/conversation/contact?lookup=1&phone=+13135550132", headers=HX
    )
    assert unknown.status_code == 200 and "No contact has this number" in unknown.text
    for typed in ("hello", ""):
        refused = operator_client.get(
            f"/sidebar/conversation/contact?lookup=1&phone={typed}", headers=HX
        )
        assert refused.status_code == 422
        assert (
            "is not a phone number to look up" in by_id(refused.text, "sidebar-lookup-error").text
        )


def test_the_frames_sign_in_shares_the_dashboards_rate_limit(app: Flask, client, viewer):
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    for attempt in range(limit):  # failures alternate between the two sign-in forms
        url = "/sidebar/login" if attempt % 2 else "/auth/login"
        assert (
            client.post(url, data={"email": viewer.email, "password": "wrong"}).status_code == 401
        )
    blocked = sidebar_sign_in(client, viewer)  # even the right password waits now
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.text
    assert 'class="sidebar"' in blocked.text  # the sidebar's own layout, inside the frame
    assert _frame_ancestors(blocked) == app.config["SIDEBAR_FRAME_ANCESTORS"]
