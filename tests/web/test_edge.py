"""One spelling of the edge (issue 9): the same refusal answers the same status on the API and the
page, and a person's API-token actions are filed under their own name in the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.services.fleet import inventory

OP = "op-0123456789abcdef0"
HTMX = {"HX-Request": "true"}


@pytest.mark.parametrize("rendering", [{}, HTMX], ids=["page", "htmx"])
def test_a_duplicate_outpost_is_409_on_the_api_and_the_page(
    client: TestClient, api_client_as: Any, session: Session, rendering: dict[str, str]
) -> None:
    body = {"outpost_id": OP, "name": "Plant 7", "region": "us-west-2"}
    api = api_client_as("admin")
    assert api.post("/api/v1/fleet/outposts", json=body).status_code == 201

    on_api = api.post("/api/v1/fleet/outposts", json=body)
    on_page = client.post("/fleet/outposts", data=body, headers=rendering)

    assert on_api.status_code == on_page.status_code == 409
    message = f"Outpost {OP} already exists (source: manual)"
    assert on_api.json()["detail"] == message
    assert message in on_page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [("plant7", 409), ("plant7?region=eu-west-1", 200), ("nowhere", 404)],
    ids=["ambiguous", "with-region", "missing"],
)
def test_a_cluster_lookup_answers_the_same_on_the_api_and_the_page(
    client: TestClient, session: Session, path: str, status: int
) -> None:
    inventory.add_cluster(session, name="plant7", region="us-west-2")
    inventory.add_cluster(session, name="plant7", region="eu-west-1")
    session.commit()

    on_api = client.get(f"/api/v1/clusters/{path}")
    on_page = client.get(f"/clusters/{path}")

    assert on_api.status_code == on_page.status_code == status
    if status == 409:
        assert "exists in eu-west-1, us-west-2" in on_api.json()["detail"]
        assert "exists in eu-west-1, us-west-2" in on_page.text


def test_filtering_the_audit_by_a_person_includes_their_api_token_actions(
    client: TestClient, api_client_as: Any
) -> None:
    alice = api_client_as("admin", "alice")
    created = alice.post(
        "/api/v1/fleet/outposts", json={"outpost_id": OP, "name": "P7", "region": "us-west-2"}
    )
    assert created.status_code == 201

    api = client.get("/api/v1/audit", params={"actor": "alice"}).json()
    (event,) = [e for e in api["items"] if e["action"] == "fleet.outpost.add"]
    assert event["actor"] == "alice" and event["target"] == f"outpost:{OP}"
    assert event["details"]["via"] == "token" and isinstance(event["details"]["token_id"], int)

    page = client.get("/audit", params={"actor": "alice", "action": "fleet"})
    assert page.status_code == 200 and f"outpost:{OP}" in page.text
    partial = client.get("/audit", params={"actor": "alice", "action": "fleet"}, headers=HTMX)
    assert f"outpost:{OP}" in partial.text
