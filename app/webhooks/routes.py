"""The webhooks blueprint: each URL a provider calls, public (the signature is the credential)
and exempt from CSRF (providers post no token)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify

from app.extensions import csrf, db
from app.security import public
from app.webhooks import missive, twilio

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)


def transient_errors_as_503(view: Callable[..., Any]) -> Callable[..., Any]:
    """A database that is down or restarting is the one failure worth a provider's retry: 503.
    (Everything else a signed webhook can send is answered 2xx or 4xx.)"""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            log.warning("webhook %s: database unavailable: %s", view.__name__, exc)
            db.session.rollback()
            response = jsonify(error="The database is unavailable; try again shortly.")
            response.status_code = 503
            response.headers["Retry-After"] = "5"
            return response

    return wrapped


for rule, endpoint, view in (
    ("/twilio/inbound", "twilio_inbound", twilio.inbound),
    ("/twilio/status", "twilio_status", twilio.status),
    ("/missive", "missive", missive.rules),
    ("/missive/admin-action", "missive_admin_action", missive.admin_action),
):
    bp.add_url_rule(rule, endpoint, public(transient_errors_as_503(view)), methods=["POST"])
