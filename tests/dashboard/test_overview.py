"""The overview page and the placeholder pages of areas not built yet."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import BroadcastSegment, ContactSource, JobOutcome, JobRun
from tests.factories import BroadcastFactory, ContactFactory, SegmentFactory


def test_overview_shows_audience_upcoming_broadcast_and_health(viewer_client):
    ContactFactory.create_batch(3)
    ContactFactory(unsubscribed=True)
    ContactFactory(source=ContactSource.UPLOAD)
    segment = SegmentFactory(name="Riverside")
    BroadcastFactory(
        first_message="Flood update <b>tonight</b>",
        segment_links=[BroadcastSegment(segment=segment, ratio=70, is_filler=True)],
    )
    db.session.add(JobRun(name="tick", outcome=JobOutcome.SUCCESS))
    db.session.commit()
    html = viewer_client.get("/").get_data(as_text=True)
    assert 'id="dashboard-upcoming"' in html
    assert "Flood update &lt;b&gt;tonight&lt;/b&gt;" in html  # escaped
    assert "Riverside 70% (filler)" in html
    # 3 subscribed conversation contacts can receive broadcasts; 5 contacts in all.
    assert (
        '<span class="stat__value">3</span><span class="stat__label">can receive broadcasts' in html
    )
    assert '<span class="stat__value">5</span><span class="stat__label">contacts in all' in html
    assert "Last tick" in html


def test_overview_without_data_says_so(viewer_client):
    html = viewer_client.get("/").get_data(as_text=True)
    assert "No upcoming broadcast yet." in html
    assert "The scheduler has not ticked yet" in html


@pytest.mark.parametrize("area", ["broadcasts", "campaigns"])
def test_areas_not_built_yet_say_so_plainly(viewer_client, area):
    response = viewer_client.get(f"/{area}/")
    assert response.status_code == 200
    assert b"This page is not built yet." in response.data
    assert b'aria-current="page"' in response.data
