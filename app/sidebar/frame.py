"""Living inside Missive's iframe: which requests belong to the sidebar, and the session cookie
that still works when the sidebar is a cross-site frame (SameSite=None; Secure; Partitioned)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface

from app.htmx import is_htmx

PREFIX = "/sidebar/"
# Set in the session by the sidebar's sign-in: that session lives in Missive's frame.
FRAME_SESSION_KEY = "_sidebar"


def sidebar_page() -> str | None:
    """The sidebar page (path and query) this request is for or comes from, else None: where
    the sidebar's sign-in comes back to.

    A sidebar page's own htmx requests often go to the features' endpoints (`/broadcasts/…`):
    htmx names the page it was sent from in HX-Current-URL. A form posted to the sidebar
    itself comes back to the sidebar's first panel (a POST cannot be repeated by a redirect)."""
    if is_htmx():
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        if page.path.startswith(PREFIX):
            return page.path + (f"?{page.query}" if page.query else "")
    if request.path.startswith(PREFIX):
        return request.full_path.rstrip("?") if request.method == "GET" else PREFIX
    return None


def cookie_refused() -> str | None:
    """ "refused" when this unsigned-in request comes straight from the sidebar's sign-in: the
    sign-in went through, but the browser did not keep (or send) the frame's cookie. The sign-in
    page then says so, instead of asking again and again."""
    referrer = urlsplit(request.referrer or "")
    if request.method == "GET" and referrer.path == PREFIX + "login":
        return "refused"
    return None


def in_frame() -> bool:
    """This request's session lives in Missive's frame: a sidebar page, one of its htmx
    requests, or any request carrying a session the sidebar's sign-in started."""
    if not has_request_context():
        return False
    return sidebar_page() is not None or bool(session.get(FRAME_SESSION_KEY))


class FrameSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, one cookie for the whole app, whose attributes follow the
    request: in Missive's frame (a cross-site iframe) the browser only stores and sends a
    cookie marked SameSite=None, which must be Secure; Partitioned (CHIPS) keys it to the top
    site (Missive), so it is never a third-party cookie that other sites could use, and keeps
    working where third-party cookies are blocked. Everywhere else: the configured SameSite
    (Lax) and Secure. The two never collide in the browser: a partitioned cookie is a separate
    cookie, stored and sent only under Missive."""

    def get_cookie_samesite(self, app: Flask) -> str | None:
        return "None" if in_frame() else super().get_cookie_samesite(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        return True if in_frame() else super().get_cookie_secure(app)

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return True if in_frame() else super().get_cookie_partitioned(app)
