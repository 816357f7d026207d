"""Webhook fixtures: an app with Twilio and Missive secrets behind a public HTTPS base URL."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.webhooks.signing import HOOK_SETTINGS


@pytest.fixture
def hook_app(make_app) -> Flask:
    return make_app(**HOOK_SETTINGS)


@pytest.fixture
def hooks(hook_app: Flask) -> FlaskClient:
    return hook_app.test_client()
