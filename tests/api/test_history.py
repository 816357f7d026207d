"""Campaign lists split as on the dashboard (drafts and scheduled upcoming, started ones past)
and paged by cursor; reconcile queues one job per send and refuses what has not started."""

from __future__ import annotations

from app.extensions import db
from app.models import CampaignStatus
from tests.factories import BroadcastFactory, CampaignFactory


def test_campaigns_are_listed_upcoming_or_past_and_paged(operator_api):
    draft = CampaignFactory()
    scheduled = CampaignFactory(status=CampaignStatus.SCHEDULED)
    started = [CampaignFactory(sending=True) for _ in range(3)]
    db.session.commit()
    upcoming = operator_api.get("/api/v1/campaigns").get_json()
    assert {c["id"] for c in upcoming["items"]} == {draft.id, scheduled.id}
    seen, cursor = [], ""
    while True:
        page = operator_api.get(f"/api/v1/campaigns?when=past&limit=2&cursor={cursor}")
        assert page.status_code == 200
        body = page.get_json()
        seen += [c["id"] for c in body["items"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert seen == sorted((c.id for c in started), reverse=True)


def test_reconcile_queues_one_job_per_send_and_refuses_what_has_not_started(operator_api):
    sending = BroadcastFactory(sending=True)
    upcoming = BroadcastFactory()
    draft = CampaignFactory()
    campaign = CampaignFactory(sending=True)
    db.session.commit()
    first = operator_api.post(f"/api/v1/broadcasts/{sending.id}/reconcile")
    assert first.status_code == 202
    again = operator_api.post(f"/api/v1/broadcasts/{sending.id}/reconcile")
    assert again.get_json()["job_id"] == first.get_json()["job_id"]  # still queued: one job
    assert operator_api.post(f"/api/v1/campaigns/{campaign.id}/reconcile").status_code == 202
    not_started = operator_api.post(f"/api/v1/broadcasts/{upcoming.id}/reconcile")
    assert not_started.status_code == 404
    assert "has not started" in not_started.get_json()["detail"]
    draft_answer = operator_api.post(f"/api/v1/campaigns/{draft.id}/reconcile")
    assert draft_answer.status_code == 409
