"""The audit trail pages and API: filters, the HTMX partial, paging, CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD
from tests.fixtures.accounts import Clock
from tests.support.htmx import Rendering


def _seed(client: TestClient, clock: Clock) -> None:
    for name in ("ann", "ben", "cid"):
        clock.advance(minutes=10)
        client.post("/reauth", data={"password": TEST_PASSWORD})  # a confirmation lasts 5 minutes
        client.post(
            "/users",
            data={
                "username": name,
                "role": "viewer",
                "password": TEST_PASSWORD,
                "password_confirm": TEST_PASSWORD,
            },
        )


def test_audit_page_filters_and_partial(client_as: Any, clock: Clock, htmx: Rendering) -> None:
    client = client_as("admin", "root")
    _seed(client, clock)
    page = client.get("/audit", params={"action": "user.create", "target": "ben"}, headers=htmx.headers)
    assert page.status_code == 200 and "user:ben" in page.text and "user:ann" not in page.text
    assert "1 event" in page.text
    htmx.check(page)
    partial = client.get("/audit", params={"actor": "root"}, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="audit-results">')
    assert "user:cid" in partial.text
    since = client.get(
        "/audit", params={"action": "user", "since": "2026-11-30T12:15", "until": "2026-11-30T12:25"}
    )
    assert "user:ben" in since.text and "user:ann" not in since.text and "user:cid" not in since.text
    bad = client.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.text


def test_audit_paging(client: TestClient, session: Session) -> None:
    from app.services.audit import Actor, record_audit

    for index in range(120):
        record_audit(session, actor=Actor(name="bulk"), action="fleet.update", target=f"outpost:{index}")
    session.commit()
    first = client.get("/audit", params={"actor": "bulk"})
    assert "page 1 of 3" in first.text and "Older" in first.text and "outpost:119" in first.text
    third = client.get("/audit", params={"actor": "bulk", "page": 3})
    assert "outpost:0<" in third.text and "Older" not in third.text


def test_audit_csv_export(client_as: Any, clock: Clock) -> None:
    client = client_as("admin", "root")
    _seed(client, clock)
    response = client.get("/audit/export.csv", params={"action": "user.create", "actor": "root"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["target"] for r in rows] == ["user:cid", "user:ben", "user:ann"]
    assert rows[0]["actor"] == "root" and rows[0]["details"] == '{"role": "viewer"}'
    assert rows[0]["time"].startswith("2026-11-30T12:30")


def test_audit_api(client_as: Any, api_client_as: Any, clock: Clock) -> None:
    client = client_as("admin", "root")
    _seed(client, clock)
    api = api_client_as("admin")
    body = api.get("/api/v1/audit", params={"action": "user.create", "actor": "root", "per_page": 2}).json()
    assert body["total"] == 3 and body["pages"] == 2 and len(body["items"]) == 2
    assert body["items"][0]["target"] == "user:cid"
    assert api.get("/api/v1/audit", params={"since": "not a date"}).status_code == 422
    assert api_client_as("responder").get("/api/v1/audit").status_code == 403
