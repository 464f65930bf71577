"""Issue 12, finding 10: the admin fallback-identity issue path needed no recent password; redirects
were built from the Host header; `x_y` and `x-y` mapped to the same binding name."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from app.services.credentials.vocabulary import binding_name_for
from app.web.security import own_url


def test_fallback_issue_needs_a_recent_password(app: Any, client: TestClient) -> None:
    real_now = dt.datetime.now(dt.UTC)
    app.state.clock = lambda: real_now + dt.timedelta(minutes=6)
    refused = client.post("/credentials/fallback", data={"lifetime_days": "30"}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/reauth")


def test_a_forged_host_never_reaches_a_redirect(client: TestClient) -> None:
    response = client.post(
        "/credentials/fallback",
        data={"lifetime_days": "30"},
        headers={"Host": "127.0.0.99:9999"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert "127.0.0.99" not in location and location.startswith("/credentials"), location


def test_own_url_keeps_the_base_url_and_other_sites() -> None:
    base = "http://127.0.0.1:8000"
    assert own_url("http://127.0.0.99/x?a=1", base, "127.0.0.99") == "/x?a=1"
    assert own_url("http://127.0.0.1:8000/x", base, "127.0.0.1:8000") == "http://127.0.0.1:8000/x"
    assert own_url("/relative", base, "anything") == "/relative"
    # A redirect to the identity provider (another host than the request's) is left alone.
    assert own_url("http://127.0.0.5:9000/authorize", base, "127.0.0.1:8000").startswith("http://127.0.0.5")


def test_binding_names_never_collide() -> None:
    assert binding_name_for("lifeline:x_y") != binding_name_for("lifeline:x-y")
    assert binding_name_for("lifeline:X-y") != binding_name_for("lifeline:x-y")
    assert binding_name_for("lifeline:oncall") == "lifeline:oncall"  # unchanged names keep their name
    assert len(binding_name_for("lifeline:" + "a_" * 100)) <= 253
