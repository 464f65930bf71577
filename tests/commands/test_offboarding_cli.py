"""Issue 12, finding 7 on the CLI: `lifeline users disable` and `set-role` (a demotion) revoke the
account's active cluster credentials, an audit row each, unless `--keep-credentials` is given."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.db import session_scope
from app.main import create_app
from app.models import Credential
from app.models.audit import AuditEvent
from tests.conftest import DatabaseServer, create_account, make_settings, sign_in
from tests.factories import add_simulated_cluster
from tests.fixtures.credentials import MANAGED

runner = CliRunner()


@dataclass
class Fleet:
    app: Any
    factory: sessionmaker[Session]
    admin: Any  # kube connection as the cluster creator
    cluster_name: str

    def bindings(self) -> list[str]:
        return [b.name for b in self.admin.list_cluster_role_bindings(label_selector=MANAGED)]

    def issue_as(self, username: str) -> int:
        with session_scope(self.factory) as session:
            create_account(session, username, "responder")
        with TestClient(self.app, base_url="http://testserver") as responder:
            sign_in(responder, username)
            response = responder.post(
                f"/api/v1/clusters/{self.cluster_name}/credentials", json={"lifetime_seconds": 3600}
            )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def status(self, credential_id: int) -> str:
        with session_scope(self.factory) as session:
            credential = session.get(Credential, credential_id)
            assert credential is not None
            return credential.status

    def revoke_audit(self, credential_id: int) -> list[tuple[str, str]]:
        with session_scope(self.factory) as session:
            rows = session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "credential.revoke",
                    AuditEvent.target == f"credential:{credential_id}",
                )
            ).all()
            return [(row.actor, row.outcome) for row in rows]


@pytest.fixture
def fleet(
    database_server: DatabaseServer,
    data_key: str,
    aws_endpoint: str,
    simulated_cluster: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Fleet]:
    """A committed database the CLI and the web app share, with a simulated cluster in the fleet."""
    from app.integrations.kube import client

    url = database_server.create_migrated("offboard")
    settings = make_settings(
        url, data_key=data_key, credential_signing_timeout_seconds=5, aws_endpoint_url=aws_endpoint
    )
    application = create_app(settings)
    factory = application.state.session_factory
    sim = simulated_cluster(name="edge-sim", endpoint_hostname="abc123.gr7.us-west-2.eks.amazonaws.com")
    with session_scope(factory) as session:
        add_simulated_cluster(session, sim, "edge-sim")
    monkeypatch.setenv("LIFELINE_DATABASE_URL", url)
    monkeypatch.setenv("LIFELINE_DATA_KEY", data_key)
    monkeypatch.setenv("LIFELINE_AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("LIFELINE_CREDENTIAL_SIGNING_TIMEOUT_SECONDS", "5")
    cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    admin = client.connect(sim.url, sim.ca_pem, client.KubeAuth.x509(cert, key))
    try:
        yield Fleet(application, factory, admin, "edge-sim")
    finally:
        admin.close()
        application.state.engine.dispose()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_disable_revokes_the_accounts_credentials(fleet: Fleet) -> None:
    credential_id = fleet.issue_as("rita")
    assert len(fleet.bindings()) == 1
    code, out = _run("users", "disable", "rita")
    assert code == 0, out
    assert f"credential #{credential_id}: revoked" in out and "1 of 1 active credential(s) revoked" in out
    assert fleet.status(credential_id) == "revoked"
    assert fleet.bindings() == []
    audit = fleet.revoke_audit(credential_id)
    assert len(audit) == 1 and audit[0][0].startswith("cli:") and audit[0][1] == "success"


def test_cli_demotion_revokes_and_a_promotion_does_not(fleet: Fleet) -> None:
    credential_id = fleet.issue_as("kim")
    with session_scope(fleet.factory) as session:
        create_account(session, "root", "admin")  # so kim is not the last admin once promoted
    code, out = _run("users", "set-role", "kim", "admin")  # a promotion keeps them
    assert code == 0 and "revoked" not in out
    assert fleet.status(credential_id) == "active"
    code, out = _run("users", "set-role", "kim", "viewer")
    assert code == 0, out
    assert "1 of 1 active credential(s) revoked" in out
    assert fleet.status(credential_id) == "revoked" and fleet.bindings() == []
    assert [outcome for _, outcome in fleet.revoke_audit(credential_id)] == ["success"]


def test_cli_keep_credentials_leaves_them_in_force(fleet: Fleet) -> None:
    demoted = fleet.issue_as("lee")
    disabled = fleet.issue_as("max")
    assert _run("users", "set-role", "lee", "viewer", "--keep-credentials")[0] == 0
    assert _run("users", "disable", "max", "--keep-credentials")[0] == 0
    assert fleet.status(demoted) == "active" and fleet.status(disabled) == "active"
    assert len(fleet.bindings()) == 2
    assert fleet.revoke_audit(demoted) == [] and fleet.revoke_audit(disabled) == []
