"""Credential fixtures: settings with a data key, and the vault built from it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.integrations.vault import Vault, decode_data_key, generate_data_key
from app.models import Cluster
from app.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def data_key() -> str:
    return generate_data_key()


@pytest.fixture
def vault(data_key: str) -> Vault:
    return Vault(decode_data_key(data_key, source="test"))


# ---------------------------------------------------------------- a simulated cluster in the fleet


@dataclass
class SimEnv:
    sim: Any
    cluster_id: int
    cluster_name: str
    admin: Any  # a kube connection as the cluster creator, to inspect what Lifeline left behind

    def csrs(self) -> list[str]:
        items = self.admin.iter_objects("certificates.k8s.io/v1", "certificatesigningrequests")
        return [str(obj["metadata"]["name"]) for obj in items]

    def bindings(self) -> list[str]:
        return [b.name for b in self.admin.list_cluster_role_bindings(label_selector=MANAGED)]


MANAGED = "app.kubernetes.io/managed-by=outpost-lifeline"


@pytest.fixture
def sim_env(simulated_cluster: Any, session: Session) -> Iterator[SimEnv]:
    """A simulated EKS local cluster (connected), registered as a fleet cluster with its CA cached."""
    from app.integrations.kube import client

    sim = simulated_cluster(name="edge-sim", endpoint_hostname="abc123.gr7.us-west-2.eks.amazonaws.com")
    cluster = Cluster(
        name="edge-sim",
        region="us-west-2",
        endpoint=sim.url,
        certificate_authority=sim.ca_data,
        cluster_uid=sim.cluster_uid,
        health_issues=[],
    )
    session.add(cluster)
    session.commit()
    cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    admin = client.connect(sim.url, sim.ca_pem, client.KubeAuth.x509(cert, key))
    try:
        yield SimEnv(sim, cluster.id, cluster.name, admin)
    finally:
        admin.close()


@pytest.fixture
def settings(database_url: str, data_key: str, aws_endpoint: str) -> Settings:
    # moto answers EC2 (no control-plane ENIs there), so nothing reaches real AWS.
    return make_settings(
        database_url, data_key=data_key, credential_signing_timeout_seconds=5, aws_endpoint_url=aws_endpoint
    )


@pytest.fixture
def live_server(database_server: Any, data_key: str, aws_endpoint: str) -> Iterator[Any]:
    """The shared live server, with a data key so Lifeline can hold the keys it generates."""
    from app.main import create_app
    from tests.conftest import LiveServer, _serve_in_thread, free_port

    url = database_server.create_migrated("live")
    live_settings = make_settings(url, data_key=data_key, aws_endpoint_url=aws_endpoint)
    application = create_app(live_settings)
    port = free_port()
    server, thread = _serve_in_thread(application, port)
    try:
        yield LiveServer(
            f"http://127.0.0.1:{port}", application, live_settings, application.state.session_factory
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
