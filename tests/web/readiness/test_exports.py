"""The findings exports (CSV, JSON, SARIF) of a seeded cluster, byte for byte against golden files
written from main before the cluster page was made compact (issue 19): the page's layout must
never change what a download holds. Regenerate only for an intended export change:
`WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/web/readiness/test_exports.py`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import __version__
from app.services.readiness import records
from app.services.readiness.export import dumps, to_csv, to_json, to_sarif
from tests.fixtures.readiness import DEMO_CLUSTER, seed_demo_cluster

GOLDEN = Path(__file__).parent / "golden"
URL = f"/api/v1/clusters/{DEMO_CLUSTER}/findings"
# SARIF names the tool's version; the golden file holds a placeholder so a release does not break it.
VERSION = "@LIFELINE_VERSION@"


@pytest.mark.parametrize("export", ["csv", "json", "sarif"])
def test_exports_are_byte_identical_to_the_golden_files(
    client: TestClient, session: Session, export: str
) -> None:
    seed_demo_cluster(session)
    body = client.get(f"{URL}?format={export}").content
    if export == "sarif":
        body = body.replace(f'"version": "{__version__}"'.encode(), f'"version": "{VERSION}"'.encode())
    golden = GOLDEN / f"{DEMO_CLUSTER}.{export}"
    if os.environ.get("WRITE_GOLDEN") == "1":
        golden.write_bytes(body)
    assert body == golden.read_bytes()


def test_exports_are_what_the_export_functions_render(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    cluster = seed_demo_cluster(session)
    findings = records.cluster_view(session, app.state.settings, cluster).findings
    assert client.get(f"{URL}?format=csv").content == to_csv(findings).encode()
    assert client.get(f"{URL}?format=json").json() == to_json(findings)
    sarif = to_sarif(findings, artifact_uri=f"cluster/{cluster.region}/{cluster.name}")
    assert client.get(f"{URL}?format=sarif").content == dumps(sarif).encode()
