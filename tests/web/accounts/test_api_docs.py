"""Interactive API docs at /api/docs: Swagger UI from the vendored static files, behind sign-in and
under the dashboard's CSP (checked in Debian's chromium: it renders and nothing is refused)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from app.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import LiveServer


def test_docs_need_sign_in_and_load_only_local_assets(client_as: Any, anon_client: Any) -> None:
    assert anon_client.get("/api/docs", follow_redirects=False).status_code in (303, 401)
    page = client_as("viewer").get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    sources = [re.sub(r"^http://testserver", "", s) for s in re.findall(r'(?:src|href)="([^"]+)"', page.text)]
    assert sources and all(s.startswith("/") for s in sources), sources  # same origin: nothing from a CDN
    assert "<script>" not in page.text  # no inline script: script-src 'self'
    for asset in (s for s in sources if s.startswith("/static/")):
        assert client_as("viewer").get(asset).status_code == 200, asset


@pytest.mark.browser
def test_swagger_ui_renders_the_schema_under_the_csp(page: Any, live_server: LiveServer) -> None:
    refused: list[str] = []
    page.on(
        "console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/clusters/{cluster}/credentials")
    expect(page.locator(".swagger-ui .btn.authorize")).to_be_visible()  # the Bearer token scheme
    assert refused == []
