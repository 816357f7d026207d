"""Results of any send (a broadcast or a campaign): statistics, the per-recipient table, the CSV
of outcomes. Broadcasts and campaigns both use this package and its partials in
`templates/sends/partials/`; neither copies any of it.

Services here take plain values (a send, a zone name, filters) and never read `current_app`
or the request: routes, jobs, the sidebar and the API pass what they need.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.models import (
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    OutboundMessage,
)

Send = Broadcast | Campaign
T = OutboundMessage.__table__


def send_kind(send: Send) -> str:
    """`broadcasts` or `campaigns`: the blueprint, the DOM id prefix and the URL's first part."""
    return "broadcasts" if isinstance(send, Broadcast) else "campaigns"


def send_column(send: Send) -> sa.Column:
    """The outbound column pointing at this send."""
    return T.c.broadcast_id if isinstance(send, Broadcast) else T.c.campaign_id


def send_label(send: Send) -> str:
    if isinstance(send, Broadcast):
        return f"Broadcast {send.id}"
    return send.title or f"Campaign {send.id}"


def is_started(send: Send) -> bool:
    """Whether the send has outbound rows to count (it has started, or was cancelled after)."""
    if isinstance(send, Broadcast):
        return send.status != BroadcastStatus.UPCOMING
    return send.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED) or (
        send.started_at is not None
    )


def is_sending(send: Send) -> bool:
    return send.status in (BroadcastStatus.SENDING, CampaignStatus.SENDING)
