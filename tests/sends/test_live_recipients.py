"""The per-recipient table of a sending send refreshes with its progress: the progress poll
announces an event while the send is sending (and once more from the poll that finds it done),
and the table, listening only while sending, fetches itself again with its filter and page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import BroadcastStatus, CampaignStatus, MessageStatus, utcnow
from tests.factories import (
    BroadcastFactory,
    CampaignFactory,
    ContactFactory,
    OutboundMessageFactory,
)
from tests.support import HX, by_id


def sending(kind: str):
    if kind == "broadcasts":
        return BroadcastFactory(sending=True)
    return CampaignFactory(sending=True, run_at=utcnow() - timedelta(minutes=1))


def finish(send) -> None:
    send.status = (
        BroadcastStatus.SENT if send.__tablename__ == "broadcasts" else CampaignStatus.SENT
    )
    send.finished_at = utcnow()
    db.session.commit()


def message(send, **fields):
    key = "broadcast" if send.__tablename__ == "broadcasts" else "campaign"
    return OutboundMessageFactory(**{key: send}, **fields)


@pytest.mark.parametrize("kind", ["broadcasts", "campaigns"])
def test_the_progress_poll_announces_progress_only_while_sending(viewer_client, kind):
    send = sending(kind)
    message(send)
    db.session.commit()
    url = f"/{kind}/{send.id}/progress"
    event = f"{kind}-{send.id}-progressed"

    live = viewer_client.get(url, headers=HX)
    assert live.status_code == 200
    assert live.headers["HX-Trigger"] == event
    # The live block polls with live=1, so the poll that finds the send done is known.
    block = by_id(live.get_data(as_text=True), f"{kind}-progress-{send.id}")
    assert f'hx-get="/{kind}/{send.id}/progress?live=1"' in block

    finish(send)
    # The poll that finds it done announces once more (the table ends on the final statuses)
    # and stops polling; any other look at a finished send's progress announces nothing.
    last = viewer_client.get(f"{url}?live=1", headers=HX)
    assert last.headers["HX-Trigger"] == event
    assert 'hx-trigger="every 2s"' not in last.get_data(as_text=True)
    done = viewer_client.get(url, headers=HX)
    assert done.status_code == 200 and "HX-Trigger" not in done.headers


@pytest.mark.parametrize("kind", ["broadcasts", "campaigns"])
def test_the_table_listens_while_sending_and_refreshes_with_its_filter_and_page(
    viewer_client, kind
):
    send = sending(kind)
    people = ContactFactory.create_batch(53)
    messages = [message(send, contact=p, status=MessageStatus.QUEUED) for p in people[:51]]
    for person in people[51:]:
        message(send, contact=person, delivered=True)
    db.session.commit()
    event = f"{kind}-{send.id}-progressed"

    page = viewer_client.get(f"/{kind}/{send.id}").get_data(as_text=True)
    listener = by_id(page, f"{kind}-recipients-live")
    assert f'hx-trigger="{event} from:body"' in listener
    assert f'hx-target="#{kind}-recipients"' in listener

    # The operator filters to queued messages and goes to the second page.
    first = viewer_client.get(f"/{kind}/{send.id}/recipients?status=queued", headers=HX)
    html = first.get_data(as_text=True)
    assert html.count("<tr id=") == 50
    after = html.split(f'id="{kind}-recipients-next"')[0].rsplit("after=", 1)[1].split('"')[0]
    second = viewer_client.get(
        f"/{kind}/{send.id}/recipients?status=queued&after={after}", headers=HX
    ).get_data(as_text=True)
    assert second.count("<tr id=") == 1
    listener = by_id(second, f"{kind}-recipients-live")
    refresh = f"/{kind}/{send.id}/recipients?status=queued&amp;after={after}"
    assert f'hx-get="{refresh}"' in listener

    # The message on that page is delivered meanwhile: the refresh (same filter, same page)
    # no longer lists it as queued, and the unfiltered page shows it delivered.
    row = messages[50]
    row.status, row.delivered_at = MessageStatus.DELIVERED, utcnow()
    db.session.commit()
    refreshed = viewer_client.get(refresh.replace("&amp;", "&"), headers=HX)
    assert refreshed.get_data(as_text=True).count("<tr id=") == 0
    unfiltered = viewer_client.get(
        f"/{kind}/{send.id}/recipients?after={after}", headers=HX
    ).get_data(as_text=True)
    assert "delivered" in by_id(unfiltered, f"{kind}-recipient-{row.id}").text

    # Once the send is done, the table no longer listens.
    finish(send)
    done = viewer_client.get(refresh.replace("&amp;", "&"), headers=HX).get_data(as_text=True)
    assert f"{kind}-recipients-live" not in done
    assert f"{kind}-recipients-live" not in viewer_client.get(f"/{kind}/{send.id}").get_data(
        as_text=True
    )
