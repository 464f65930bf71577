"""The application shell: health, security of static assets, error pages."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_healthz(anon_client: TestClient) -> None:
    response = anon_client.get("/healthz")
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines[0] == "ok"
    # No scheduler in the test app: nobody leads, and this process says so.
    assert "this process: no scheduler" in lines


def test_htmx_is_vendored(anon_client: TestClient) -> None:
    response = anon_client.get("/static/js/vendor/htmx-2.0.11.min.js")
    assert response.status_code == 200
    assert "htmx" in response.text[:2000]


def test_unknown_api_route_is_json_404(anon_client: TestClient) -> None:
    response = anon_client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
