"""Every answer under /api is problem+json: the bare /api path, the sign-in guard's refusal of an
API view not marked public, and an exception inside a handler (a 500 without its traceback)."""

from __future__ import annotations

import app.api.routes as routes
from app.security import _unauthorized

PROBLEM = "application/problem+json"


def test_the_bare_api_path_answers_problem_json(client):
    response = client.get("/api")
    assert response.status_code == 404
    assert response.content_type == PROBLEM


def test_the_sign_in_guard_refuses_api_paths_as_problem_json(app):
    with app.test_request_context("/api/v1/anything"):
        response = _unauthorized()
    assert response.status_code == 401
    assert response.content_type == PROBLEM
    assert "API token" in response.get_json()["detail"]


def test_an_exception_in_a_handler_is_a_500_problem_without_its_traceback(
    operator_api, monkeypatch
):
    def broken():
        raise RuntimeError("internal detail /work/secret")

    monkeypatch.setattr(routes, "api_user", broken)
    response = operator_api.get("/api/v1/me")
    assert response.status_code == 500
    assert response.content_type == PROBLEM
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "internal detail" not in text
    assert "Nothing was saved" in response.get_json()["detail"]


def test_options_answers_its_methods_with_no_body(operator_api):
    response = operator_api.open("OPTIONS", "/api/v1/campaigns")
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
    assert {"GET", "POST"} <= set(response.headers["Allow"].replace(" ", "").split(","))
