"""Credential pages and API that need no cluster: the form and its errors, inventory, downloads, expiry."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.integrations import pki
from app.integrations.vault import Vault
from app.models import Credential, CredentialDownload
from app.models.audit import AuditEvent
from tests.factories import make_active_credential, make_cluster
from tests.support.htmx import Rendering


def _credential_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Credential)) or 0


def test_inventory_empty_state_and_partial(client: TestClient, htmx: Rendering) -> None:
    response = client.get("/credentials", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    assert "No emergency credentials yet" in response.text
    assert ("<html" in response.text) is not htmx.partial


def test_form_defaults(client: TestClient, session: Session) -> None:
    cluster = make_cluster(session)
    page = client.get(f"/credentials/new?cluster={cluster.id}")
    assert page.status_code == 200
    assert 'value="lifeline:breakglass"' in page.text
    # Issue 10: the default follows the product's own advice (90 days or less), so no warning.
    assert 'name="lifetime" value="90"' in page.text
    assert 'class="flash warn small"' not in page.text
    assert f'<option value="{cluster.id}" selected>' in page.text
    assert "ECDSA P-256 (default, fastest)" in page.text and "RSA 4096 (as in AWS" in page.text
    # The cluster's disconnect horizon (72 h by default) is said next to the lifetime.
    assert "prepared for disconnects of up to 72 h" in page.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"group": "system:masters"}, "system:masters is refused"),
        ({"username": "system:admin"}, "reserved"),
        ({"lifetime": "5", "lifetime_unit": "minutes"}, "at least 10 minutes"),
        ({"cluster_role": "cluster-admin", "other_role": "bad role!"}, "ClusterRole"),
        ({"custody": "uploaded-csr", "csr": "garbage"}, "not a PEM certificate signing request"),
        ({"key_type": "dsa-1024"}, "unknown key type"),
    ],
)
def test_bad_form_input_is_refused_with_422_and_nothing_is_created(
    client: TestClient, session: Session, fields: dict[str, str], message: str
) -> None:
    cluster = make_cluster(session)
    data = {"cluster": str(cluster.id), "lifetime": "30", "lifetime_unit": "days", **fields}
    response = client.post("/credentials", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert message in response.text
    assert 'id="issue-form"' in response.text and "<html" not in response.text
    assert _credential_count(session) == 0


def test_uploaded_csr_for_system_masters_is_refused_with_the_reason(
    client: TestClient, session: Session
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    cluster = make_cluster(session)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "lifeline:admin"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    response = client.post(
        "/credentials",
        data={
            "cluster": str(cluster.id),
            "custody": "uploaded-csr",
            "lifetime": "1",
            "lifetime_unit": "days",
        },
        files={"csr_file": ("admin.csr", pem.encode(), "application/pkcs10")},
    )
    assert response.status_code == 422
    assert "system:masters" in response.text and "never be revoked" in response.text
    api = client.post(
        f"/api/v1/clusters/{cluster.name}/credentials", json={"custody": "uploaded-csr", "csr": pem}
    )
    assert api.status_code == 422 and api.json()["field"] == "csr"
    assert "system:masters" in api.json()["detail"]
    assert _credential_count(session) == 0


def test_lifetime_hint(client: TestClient) -> None:
    long = client.post("/credentials/new/lifetime", data={"lifetime": "365", "lifetime_unit": "days"})
    assert "365-day certificate cannot be revoked" in long.text
    short = client.post("/credentials/new/lifetime", data={"lifetime": "30", "lifetime_unit": "days"})
    assert "cannot be revoked" not in short.text
    tiny = client.post("/credentials/new/lifetime", data={"lifetime": "5", "lifetime_unit": "minutes"})
    assert "under 10 minutes" in tiny.text


def test_kubeconfig_and_bundle_download_without_aws_are_audited(
    client: TestClient, session: Session, vault: Vault
) -> None:
    cluster = make_cluster(session)
    credential = make_active_credential(session, cluster, vault, issued_by="admin")
    session.commit()
    response = client.get(f"/credentials/{credential.id}/kubeconfig")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "attachment" in response.headers["content-disposition"]
    config = yaml.safe_load(response.text)
    assert config["current-context"] == "lifeline:alice@edge-1"
    key_pem = base64.b64decode(config["users"][0]["user"]["client-key-data"])
    cert_pem = base64.b64decode(config["users"][0]["user"]["client-certificate-data"]).decode()
    assert pki.public_key_sha256_of_private_key(key_pem) == pki.parse_certificate(cert_pem).public_key_sha256
    bundle = client.get(f"/api/v1/credentials/{credential.id}/bundle")
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        hosts = next(n for n in archive.namelist() if n.endswith("/hosts"))
        assert archive.read(hosts).decode().startswith("127.0.1.11 abc123.gr7.us-west-2.eks.amazonaws.com")
    session.expire_all()
    assert session.get(Credential, credential.id).download_count == 2  # type: ignore[union-attr]
    downloads = list(session.scalars(select(CredentialDownload).order_by(CredentialDownload.id)))
    assert [d.artifact for d in downloads] == ["kubeconfig", "bundle"]
    events = list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == "credential.download").order_by(AuditEvent.id)
        )
    )
    assert [e.details["artifact"] for e in events] == ["kubeconfig", "bundle"]
    assert all(e.target == f"credential:{credential.id}" for e in events)


def test_api_never_returns_the_key(client: TestClient, session: Session, vault: Vault) -> None:
    cluster = make_cluster(session)
    credential = make_active_credential(session, cluster, vault)
    session.commit()
    listing = client.get("/api/v1/credentials")
    one = client.get(f"/api/v1/credentials/{credential.id}")
    assert listing.status_code == one.status_code == 200
    for body in (listing.text, one.text):
        assert "PRIVATE KEY" not in body and "lv1:" not in body
    record = one.json()
    assert record["identity"] == "lifeline:alice" and record["status"] == "active"
    assert record["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")


def test_expiry_warnings_at_30_and_7_days(client: TestClient, session: Session, vault: Vault) -> None:
    cluster = make_cluster(session)
    make_active_credential(session, cluster, vault, username="lifeline:soon", days=5)
    make_active_credential(session, cluster, vault, username="lifeline:later", days=20)
    make_active_credential(session, cluster, vault, username="lifeline:fine", days=60)
    session.commit()
    partial = client.get(f"/credentials/expiry?cluster={cluster.id}", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "lifeline:soon" in partial.text and "lifeline:later" in partial.text
    assert "lifeline:fine" not in partial.text
    assert partial.text.index("flash bad") < partial.text.index("flash warn")
    page = client.get("/credentials")
    assert (
        "expires in <strong>4 days</strong>" in page.text or "expires in <strong>5 days</strong>" in page.text
    )


def test_bundle_uses_the_readiness_pollers_eni_ips_when_none_were_recorded(
    client: TestClient, session: Session, vault: Vault
) -> None:
    from app.models.readiness import ClusterReadiness

    cluster = make_cluster(session)
    credential = make_active_credential(session, cluster, vault, issued_by="admin")
    credential.control_plane_ips = []
    session.add(ClusterReadiness(cluster_pk=cluster.id, facts={"eni_ips": ["127.9.0.5"]}))
    session.commit()
    config = yaml.safe_load(client.get(f"/credentials/{credential.id}/kubeconfig").text)
    assert config["clusters"][1]["cluster"]["server"] == "https://127.9.0.5:443"


def test_overview_and_cluster_page_load_the_expiry_warnings(client: TestClient, session: Session) -> None:
    cluster = make_cluster(session)
    session.commit()
    overview = client.get("/")
    assert overview.status_code == 200
    assert 'hx-get="http://testserver/credentials/expiry" hx-trigger="load"' in overview.text
    page = client.get(f"/clusters/{cluster.name}?region={cluster.region}")
    assert page.status_code == 200, page.text
    assert f'/credentials/expiry?cluster={cluster.id}" hx-trigger="load"' in page.text


def test_active_credential_heading_no_longer_says_issuing(
    client: TestClient, session: Session, vault: Vault
) -> None:
    """The heading follows the credential's status: "Issued" once it is active (issue 19)."""
    credential = make_active_credential(session, make_cluster(session), vault, issued_by="admin")
    session.commit()
    html = client.get(f"/credentials/{credential.id}").text
    heading = html[html.index('<section class="panel">') :].split("</h2>", 1)[0]
    assert "Issued" in heading and "Issuing" not in heading
    assert '<span class="badge ok">active</span>' in heading
