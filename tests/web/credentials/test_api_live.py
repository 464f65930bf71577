"""`POST /api/v1/clusters/{cluster}/credentials` on a real server and database file (issue 10 saw
`{"detail": "credential 1 does not exist"}` on success): 201 with the issued record, and the
duplicate refusal names the existing credential by id and URL."""

from __future__ import annotations

from typing import Any

import httpx

from app.db import session_scope
from app.models import Cluster
from app.services.accounts.tokens import create_token
from app.services.audit import Actor
from tests.conftest import create_account


def test_api_issue_answers_201_with_the_record_and_a_duplicate_links_to_it(
    live_server: Any, simulated_cluster: Any
) -> None:
    sim = simulated_cluster(name="edge-api")
    with session_scope(live_server.session_factory) as db:
        db.add(
            Cluster(
                name="edge-api",
                region="us-west-2",
                endpoint=sim.url,
                certificate_authority=sim.ca_data,
                cluster_uid=sim.cluster_uid,
                health_issues=[],
            )
        )
        user = create_account(db, "api-responder", "responder")
        raw, _ = create_token(db, user, name="t", expires_in_days=None, actor=Actor(name="test"))
    headers = {"Authorization": f"Bearer {raw}"}
    url = f"{live_server.url}/api/v1/clusters/edge-api/credentials"
    first = httpx.post(url, json={}, headers=headers, timeout=60)
    assert first.status_code == 201, first.text
    record = first.json()
    assert record["status"] == "active" and record["identity"] == "lifeline:api-responder"
    # The defaults: 90 days (the product's advice), the documented default role.
    assert record["cluster_role"] == "cluster-admin"
    got = httpx.get(f"{live_server.url}/api/v1/credentials/{record['id']}", headers=headers, timeout=10)
    assert got.status_code == 200 and got.json()["status"] == "active"

    again = httpx.post(url, json={}, headers=headers, timeout=60)
    assert again.status_code == 409
    body = again.json()
    assert body["existing_id"] == record["id"]
    assert body["existing_url"].endswith(f"/credentials/{record['id']}")
    assert f"#{record['id']}" in body["detail"]
