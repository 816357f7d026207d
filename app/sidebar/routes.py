"""The Missive sidebar's pages (a 320 px iframe): sign-in, the broadcast, campaign and
conversation panels. They render the features' own partials with the features' contexts; the
partials' htmx requests go to the features' own endpoints (same roles, same rules), and come
back here when something navigates (`next`)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from app.auth.forms import LoginForm
from app.auth.routes import local_path, login_limits, sign_in, sign_out
from app.broadcasts import routes as broadcasts_views
from app.broadcasts.display import zone_label
from app.broadcasts.services import history_page as broadcast_history
from app.broadcasts.services import sending_broadcasts, upcoming_or_draft
from app.campaigns import editing as campaign_editing
from app.campaigns.forms import CampaignForm
from app.campaigns.services import (
    current_estimate,
    sending_campaigns,
    target_summary,
    upcoming_campaigns,
)
from app.campaigns.services import history_page as campaign_history
from app.contacts.forms import ReasonForm
from app.contacts.services import contact_labels, contact_timeline
from app.extensions import db
from app.htmx import vary_on_htmx, wants_partial
from app.models import Campaign, Role
from app.pagination import page_number
from app.security import public, require_role
from app.sends.stats import display_stats
from app.sidebar.frame import FRAME_SESSION_KEY
from app.sidebar.services import conversation_contact, conversation_phones

bp = Blueprint("sidebar", __name__, url_prefix="/sidebar")

PAST_PAGE = 5
UPCOMING_SHOWN = 20
TIMELINE_SHOWN = 30


def _zone() -> str:
    return current_app.config["APP_TIMEZONE"]


def _page(body: str, status: int = 200) -> Response:
    return vary_on_htmx(current_app.make_response((body, status)))


def _sidebar_path(target: str | None) -> str | None:
    """`target` if it is a sidebar page: sign-in only ever comes back into the sidebar."""
    target = local_path(target)
    return target if target and target.startswith(bp.url_prefix + "/") else None


# -- sign-in inside the frame ------------------------------------------------------------------
@bp.get("/")
def index():
    return redirect(url_for("sidebar.broadcasts"))


@bp.get("/login")
@public
def login():
    target = _sidebar_path(request.args.get("next")) or url_for("sidebar.broadcasts")
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm(next=target)
    refused = request.args.get("cookie") == "refused"
    return _page(render_template("sidebar/login.html", form=form, tab=None, refused=refused))


@bp.post("/login")
@public
@login_limits
def create_session():
    form = LoginForm()
    if not form.validate_on_submit():
        return _page(render_template("sidebar/login.html", form=form, tab=None), 422)
    # No "keep me signed in" here: a remember-me cookie would not be partitioned.
    if sign_in(form, remember=False) is None:
        return _page(render_template("sidebar/login.html", form=form, tab=None), 401)
    # This session lives in Missive's frame: its cookie keeps the frame's attributes on every
    # response, whichever endpoint a sidebar form posts to (app/sidebar/frame.py).
    session[FRAME_SESSION_KEY] = True
    return redirect(_sidebar_path(form.next.data) or url_for("sidebar.broadcasts"))


@bp.post("/logout")
def logout():
    sign_out("Signed out (Missive sidebar)")
    return redirect(url_for("sidebar.login"))


# -- the broadcast panel -----------------------------------------------------------------------
def _past_context(page: int) -> dict[str, Any]:
    rows, following = broadcast_history(page, PAST_PAGE)
    return dict(
        sends=rows, sends_next=following, more_endpoint="sidebar.past_broadcasts", kind="broadcasts"
    )


@bp.get("/broadcasts")
def broadcasts():
    """The upcoming broadcast (edit, reschedule, send now), the weekly schedule and default
    batch size, the last broadcast's figures and the past ones."""
    upcoming = upcoming_or_draft(_zone())
    past = _past_context(1)
    context = {
        **broadcasts_views.upcoming_context(upcoming),
        **broadcasts_views.next_run_context(upcoming),
        **broadcasts_views.schedule_context(),
        **past,
        "last": past["sends"][0] if past["sends"] else None,
        "sending": [(b, display_stats(b)) for b in sending_broadcasts()],
        "next_url": url_for("sidebar.broadcasts"),
        "tab": "broadcasts",
    }
    return _page(render_template("sidebar/broadcasts.html", **context))


@bp.get("/broadcasts/past")
def past_broadcasts():
    """More past broadcasts ("show more" appends them)."""
    if not wants_partial():
        return redirect(url_for("sidebar.broadcasts"))
    return _page(render_template("sidebar/partials/_sends.html", **_past_context(page_number())))


# -- the campaign panel ------------------------------------------------------------------------
def _campaign_history(page: int) -> dict[str, Any]:
    rows, following = campaign_history(page, PAST_PAGE)
    return dict(
        sends=rows,
        sends_next=following,
        more_endpoint="sidebar.past_campaigns",
        kind="campaigns",
    )


@bp.get("/campaigns")
def campaigns():
    """Upcoming campaigns (each opens to its estimate, edit and delete), new, and history."""
    context = {
        "upcoming": [(c, target_summary(c)) for c in upcoming_campaigns(UPCOMING_SHOWN)],
        "sending": [(c, display_stats(c)) for c in sending_campaigns()],
        "can_edit": current_user.has_role(Role.OPERATOR),
        "zone_label": zone_label(_zone()),
        **_campaign_history(1),
        "tab": "campaigns",
    }
    return _page(render_template("sidebar/campaigns.html", **context))


@bp.get("/campaigns/past")
def past_campaigns():
    if not wants_partial():
        return redirect(url_for("sidebar.campaigns"))
    return _page(
        render_template("sidebar/partials/_sends.html", **_campaign_history(page_number()))
    )


@bp.get("/campaigns/<int:campaign_id>/estimate")
def campaign_estimate(campaign_id: int):
    """A waiting campaign's estimate, counted when its row is opened (the start's own query)."""
    campaign = db.get_or_404(Campaign, campaign_id)
    if not wants_partial():
        return redirect(url_for("sidebar.campaigns"))
    html = render_template(
        "campaigns/partials/_estimate.html",
        estimate=current_estimate(campaign, zone=_zone()),
        values={},
    )
    db.session.rollback()
    return _page(html)


def _campaign_form(form: CampaignForm, campaign: Campaign | None) -> Response:
    context = campaign_editing.form_context(form, campaign, next_url=url_for("sidebar.campaigns"))
    return _page(render_template("sidebar/campaign_form.html", tab="campaigns", **context))


@bp.get("/campaigns/new")
@require_role(Role.OPERATOR)
def new_campaign():
    return _campaign_form(CampaignForm.blank(), None)


@bp.get("/campaigns/<int:campaign_id>/edit")
@require_role(Role.OPERATOR)
def edit_campaign(campaign_id: int):
    campaign = campaign_editing.editable(campaign_id)
    return _campaign_form(CampaignForm.from_campaign(campaign, _zone()), campaign)


# -- the conversation panel --------------------------------------------------------------------
@bp.get("/conversation")
def conversation():
    """The contact of the conversation selected in Missive: its script asks Missive which one
    is selected and loads the contact below (sidebar.js)."""
    return _page(render_template("sidebar/conversation.html", tab="conversation"))


@bp.get("/conversation/contact")
def conversation_panel():
    """The selected conversation's contact: status, what it was sent and how it went, replies,
    and unsubscribe/resubscribe. No conversation or several: say to select one."""
    if not wants_partial():
        return redirect(url_for("sidebar.conversation"))
    missive_id = request.args.get("conversation", "").strip()
    # lookup=1: a number typed in the panel's look-up (the page is not inside Missive's
    # sidebar, or Missive never said which conversation is selected).
    lookup = request.args.get("lookup") == "1"
    selected = "1" if lookup else request.args.get("selected", "1")
    context: dict[str, Any] = dict(selected=selected, missive_id=missive_id, lookup=lookup)
    if selected == "1" and (missive_id or lookup):
        config = current_app.config
        phones = conversation_phones(
            request.args.getlist("phone"),
            [config["MISSIVE_FROM_NUMBER"], config["TWILIO_FROM_NUMBER"]],
        )
        if lookup and not phones:
            context.update(phones=[], contact=None, typed=request.args.get("phone", "")[:40])
            return _page(render_template("sidebar/partials/_conversation.html", **context), 422)
        contact = conversation_contact(missive_id, phones)
        context.update(phones=phones, contact=contact)
        if contact is not None:
            context.update(
                labels=contact_labels(contact),
                timeline=contact_timeline(contact, TIMELINE_SHOWN),
                reason_form=ReasonForm(formdata=None),
                in_place=True,
            )
    return _page(render_template("sidebar/partials/_conversation.html", **context))
