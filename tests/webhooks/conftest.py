"""Webhook fixtures: an app with Twilio and Missive secrets behind a public HTTPS base URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.fakes.missive import FakeMissive
from tests.webhooks.signing import HOOK_SETTINGS, OUR_NUMBER


@pytest.fixture
def hook_app(make_app) -> Flask:
    return make_app(**HOOK_SETTINGS)


@pytest.fixture
def hooks(hook_app: Flask) -> FlaskClient:
    return hook_app.test_client()


@pytest.fixture
def fake() -> Iterator[FakeMissive]:
    """The fake Missive API (drafts, posts, conversations) the missive transport talks to."""
    with FakeMissive(seed=7) as server:
        yield server


@pytest.fixture
def missive_app(make_app, fake) -> Flask:
    """Signed webhooks with the missive transport against the fake Missive API."""
    return make_app(
        **HOOK_SETTINGS,
        TRANSPORT="missive",
        MISSIVE_API_TOKEN=fake.token,
        MISSIVE_API_BASE_URL=fake.url + "/v1",
        MISSIVE_FROM_NUMBER=OUR_NUMBER,
        MISSIVE_ORGANIZATION_ID="org-1",
        HELP_REPLY="Reply STOP to stop.",
    )
