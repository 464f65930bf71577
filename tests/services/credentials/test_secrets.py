"""Private keys never reach the database unencrypted, the logs, or the API (outside a download)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session

from app.models import Credential
from tests.fixtures.credentials import SimEnv

MARKER = "PRIVATE KEY"


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bytes | bytearray | memoryview):
        return [bytes(value).decode("latin-1")]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_no_private_key_in_any_table_log_or_api_response(
    client: TestClient, sim_env: SimEnv, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = []
    for key_type in ("ecdsa-p256", "rsa-2048"):
        response = client.post(
            f"/api/v1/clusters/{sim_env.cluster_name}/credentials",
            json={"identity": f"lifeline:{key_type}", "key_type": key_type, "lifetime_seconds": 900},
        )
        assert response.status_code == 201, response.text
        responses.append(response)
    first = responses[0].json()["id"]
    responses.append(client.get("/api/v1/credentials"))
    responses.append(client.post(f"/api/v1/credentials/{first}/verify"))
    responses.append(client.get(f"/credentials/{first}"))
    responses.append(client.get("/credentials"))
    # The download is the one place a key may appear, and it does.
    download = client.get(f"/api/v1/credentials/{first}/kubeconfig")
    assert MARKER in base64.b64decode(download.text.split("client-key-data: ")[1].split()[0]).decode()

    session.expire_all()
    metadata = MetaData()
    metadata.reflect(bind=session.get_bind())
    scanned = 0
    for table in metadata.sorted_tables:
        for row in session.execute(select(table)):
            for text in _strings(list(row)):
                scanned += 1
                assert MARKER not in text, f"{table.name} holds a private key in clear text"
                # Not even base64-wrapped.
                assert "UFJJVkFURSBLRVk" not in text and "BSSVZBVEUgS0VZ" not in text, table.name
    assert scanned > 50
    sealed = [c.encrypted_key for c in session.scalars(select(Credential))]
    assert len(sealed) == 2 and all(s and s.startswith("lv1:") for s in sealed)

    assert MARKER not in caplog.text
    for response in responses:
        assert MARKER not in response.text
