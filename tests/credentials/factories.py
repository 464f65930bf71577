"""Builders for credential tests: clusters with a cached CA, and active credentials signed by a test CA."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from app.integrations import pki
from app.integrations.vault import Vault
from app.models import Cluster, Credential
from app.services.credentials.vocabulary import key_context


@dataclass
class TestCA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def b64(self) -> str:
        return base64.b64encode(self.pem.encode()).decode()

    def sign(self, csr_pem: str, seconds: int, now: dt.datetime | None = None) -> str:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        start = now or dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(seconds=seconds))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca() -> TestCA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TestCA(key, cert)


def make_cluster(
    session: Session,
    name: str = "edge-1",
    *,
    endpoint: str = "https://abc123.gr7.us-west-2.eks.amazonaws.com",
    ca: TestCA | None = None,
    region: str = "us-west-2",
    cluster_uid: str | None = None,
) -> Cluster:
    cluster = Cluster(
        name=name,
        region=region,
        endpoint=endpoint,
        certificate_authority=(ca or make_ca()).b64,
        cluster_uid=cluster_uid,
        health_issues=[],
    )
    session.add(cluster)
    session.flush()
    return cluster


def make_active_credential(
    session: Session,
    cluster: Cluster,
    vault: Vault,
    *,
    username: str = "lifeline:alice",
    issued_by: str = "alice",
    issued_by_user_id: int | None = None,
    days: float = 30,
    ca: TestCA | None = None,
) -> Credential:
    """An active credential as if issued earlier (certificate from a test CA, key sealed)."""
    key = pki.generate_private_key()
    csr = pki.build_csr(key.pem, username, ("lifeline:breakglass",))
    cert_pem = (ca or make_ca()).sign(csr, int(days * 86400))
    info = pki.parse_certificate(cert_pem)
    credential = Credential(
        cluster_pk=cluster.id,
        kind="breakglass",
        username=username,
        group_name="lifeline:breakglass",
        cluster_role="cluster-admin",
        key_type="ecdsa-p256",
        custody="server",
        csr_pem=csr,
        certificate_pem=cert_pem,
        fingerprint_sha256=info.fingerprint_sha256,
        serial_hex=info.serial_hex,
        not_before=info.not_before,
        not_after=info.not_after,
        requested_lifetime_seconds=int(days * 86400),
        control_plane_ips=["10.0.1.11", "10.0.1.12"],
        status="active",
        issued_by=issued_by,
        issued_by_user_id=issued_by_user_id,
        issued_at=info.not_before,
        binding_name=f"lifeline:{username.split(':')[-1]}",
        download_count=0,
    )
    session.add(credential)
    session.flush()
    credential.encrypted_key = vault.seal(key.pem, context=key_context(credential.id))
    session.flush()
    return credential
