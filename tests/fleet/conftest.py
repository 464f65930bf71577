"""Fixtures for the fleet tests: a committed database for the CLI, and moto EKS clusters."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from app.db import create_db_engine
from tests.conftest import DatabaseServer

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def cli_database_url(database_server: DatabaseServer) -> str:
    """A migrated database the CLI commits to (the CLI owns its transactions)."""
    return database_server.create_migrated("fleetcli")


@pytest.fixture
def cli_db(cli_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """LIFELINE_DATABASE_URL points at the CLI database, emptied before the test."""
    engine = create_db_engine(cli_database_url)
    with engine.begin() as conn:
        for table in ("clusters", "outposts", "poll_runs"):
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names
    engine.dispose()
    monkeypatch.setenv("LIFELINE_DATABASE_URL", cli_database_url)
    yield cli_database_url


def _ca_pem() -> str:
    """A real self-signed CA certificate, base64-encoded as EKS returns it."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


@pytest.fixture(scope="session")
def ca_data() -> str:
    return _ca_pem()


MakeCluster = Callable[..., dict[str, Any]]


@pytest.fixture
def make_eks_cluster(aws_endpoint: str, ca_data: str) -> MakeCluster:
    """Create an EKS cluster in moto; with `outpost_id` it becomes a local cluster.

    moto drops outpostConfig, id and health and returns a random CA, so those are set on the
    backend object (moto's server runs in this process).
    """
    import boto3
    from moto.eks.models import eks_backends

    def make(
        name: str,
        region: str = "us-west-2",
        *,
        outpost_id: str | None = None,
        uid: str | None = None,
        health: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        client = boto3.client("eks", region_name=region, endpoint_url=aws_endpoint)
        client.create_cluster(
            name=name,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        backend = eks_backends[ACCOUNT][region].clusters[name]
        backend.certificate_authority = {"data": ca_data}
        if outpost_id is not None:
            backend.outpost_config = {
                "outpostArns": [f"arn:aws:outposts:{region}:{ACCOUNT}:outpost/{outpost_id}"],
                "controlPlaneInstanceType": "m5.large",
            }
            backend.id = uid or f"{name}-0000-4000-8000-000000000000"[:36]
            backend.health = {"issues": health or []}
        return {"name": name, "region": region, "outpost_id": outpost_id}

    return make
