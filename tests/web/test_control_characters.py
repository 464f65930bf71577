"""Issue 12, finding 9: NUL bytes gave 500s on PostgreSQL, anonymously too. Control characters are
refused at the edge with a 422 naming the field (run this file with LIFELINE_TEST_DATABASE_URL set
for PostgreSQL too)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.web.security import CSRF_COOKIE


def test_nul_in_the_sign_in_form_is_a_422_naming_the_field(anon_client: TestClient) -> None:
    anon_client.get("/login")
    token = anon_client.cookies.get(CSRF_COOKIE, "")
    response = anon_client.post(
        "/login",
        content=f"username=bob%00&password=x&csrf_token={token}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert "username contains the control character U+0000" in response.text


def test_nul_in_a_query_parameter_is_a_422(client: TestClient) -> None:
    response = client.get("/api/v1/outposts?region=a%00b")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "region"]
    page = client.get("/outposts?region=a%00b")
    assert page.status_code == 422


def test_nul_in_a_json_name_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/outposts",
        json={"outpost_id": "op-0123456789abcdef0", "name": "a\u0000b", "region": "us-west-2"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_escape_sequences_are_refused_but_lines_in_bodies_are_kept(client: TestClient) -> None:
    escape = client.post(
        "/api/v1/outposts",
        json={"outpost_id": "op-0123456789abcdef0", "name": "\u001b[31mred", "region": "us-west-2"},
    )
    assert escape.status_code == 422 and "U+001B" in escape.json()["detail"][0]["msg"]
    lines: Any = client.post(
        "/api/v1/outposts",
        json={"outpost_id": "op-0123456789abcdef0", "name": "Plant\n7", "region": "us-west-2"},
    )
    assert lines.status_code != 500 and "control character" not in lines.text
