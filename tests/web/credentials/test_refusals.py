"""The same refusal answers the same status on the API and the page, and audited refusals stay audited.

Each case here answered differently before issue 9 (the status was chosen by reading the message).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_db_engine, make_session_factory, session_scope
from app.integrations.vault import Vault, generate_data_key
from app.models import Credential
from app.models.audit import AuditEvent
from tests.factories import make_active_credential, make_cluster

NO_KEY = "no data key configured"


def _configure_data_key(app: FastAPI, data_key: str | None) -> None:
    secret = SecretStr(data_key) if data_key else None
    app.state.settings = app.state.settings.model_copy(update={"data_key": secret, "data_key_file": None})


def test_renewing_without_a_data_key_is_a_conflict_on_api_and_page(
    app: FastAPI, client: TestClient, session: Session, vault: Vault
) -> None:
    credential = make_active_credential(session, make_cluster(session), vault, issued_by="admin")
    session.commit()
    _configure_data_key(app, None)
    api = client.post(f"/api/v1/credentials/{credential.id}/renew")
    page = client.post(f"/credentials/{credential.id}/renew", follow_redirects=False)
    assert (api.status_code, page.status_code) == (409, 409)
    assert NO_KEY in api.json()["detail"] and NO_KEY in page.text


def test_issuing_a_server_held_key_without_a_data_key_is_a_conflict_on_api_and_page(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    cluster = make_cluster(session)
    session.commit()
    _configure_data_key(app, None)
    api = client.post(f"/api/v1/clusters/{cluster.name}/credentials", json={"custody": "server"})
    page = client.post(
        "/credentials",
        data={"cluster": str(cluster.id), "custody": "server", "lifetime": "30", "lifetime_unit": "days"},
        headers={"HX-Request": "true"},
    )
    assert (api.status_code, page.status_code) == (409, 409)
    assert NO_KEY in api.json()["detail"]
    # The form comes back with the reason on the custody field, and nothing was recorded.
    assert 'id="issue-form"' in page.text and "<html" not in page.text and NO_KEY in page.text
    assert session.scalar(select(func.count()).select_from(Credential)) == 0


@pytest.mark.parametrize("artifact", ["kubeconfig", "bundle"])
def test_a_data_key_that_cannot_open_the_stored_key_is_unavailable_on_api_and_page(
    app: FastAPI, client: TestClient, session: Session, vault: Vault, artifact: str
) -> None:
    credential = make_active_credential(session, make_cluster(session), vault, issued_by="admin")
    session.commit()
    _configure_data_key(app, generate_data_key())
    api = client.get(f"/api/v1/credentials/{credential.id}/{artifact}")
    page = client.get(f"/credentials/{credential.id}/{artifact}")
    assert (api.status_code, page.status_code) == (503, 503)
    assert "cannot be opened" in api.json()["detail"] and "cannot be opened" in page.text


def test_a_refused_download_is_forbidden_on_api_and_page_and_its_audit_row_is_kept(
    client_as: Any, session: Session, vault: Vault
) -> None:
    credential = make_active_credential(session, make_cluster(session), vault, issued_by="alice")
    session.commit()
    bob = client_as("responder", "bob")
    api = bob.get(f"/api/v1/credentials/{credential.id}/kubeconfig")
    page = bob.get(f"/credentials/{credential.id}/bundle")
    assert (api.status_code, page.status_code) == (403, 403)
    assert "only credentials they issued" in api.json()["detail"]
    session.expire_all()
    denied = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "credential.download", AuditEvent.target == f"credential:{credential.id}")
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.actor, e.outcome, e.details["artifact"], e.details["via"]) for e in denied] == [
        ("bob", "denied", "kubeconfig", "browser"),
        ("bob", "denied", "bundle", "browser"),
    ]
    assert session.get(Credential, credential.id).download_count == 0  # type: ignore[union-attr]


def test_cli_export_is_audited_as_the_cli(
    database_server: Any, data_key: str, vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_server.create_migrated("cli_via")
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        credential_id = make_active_credential(session, make_cluster(session), vault).id
    monkeypatch.setenv("LIFELINE_DATABASE_URL", url)
    monkeypatch.setenv("LIFELINE_DATA_KEY", data_key)
    target = tmp_path / "bundle.zip"
    exported = CliRunner().invoke(cli, ["credentials", "export", str(credential_id), "-o", str(target)])
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as archive:
        assert any(name.endswith("/kubeconfig") for name in archive.namelist())
    with session_scope(factory) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "credential.download")).one()
        assert event.actor.startswith("cli:") and event.details["via"] == "cli"
    engine.dispose()
