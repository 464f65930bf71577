"""The issue form through to the live progress page, the fallback identity, and the re-verify job."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.kube import client as kube
from app.integrations.vault import Vault
from app.jobs import credentials as credentials_job
from app.models import Credential
from app.services.credentials.access import fallback_identity
from app.settings import Settings
from tests.fixtures.credentials import SimEnv


def test_form_issue_redirects_to_live_progress(client: TestClient, sim_env: SimEnv, session: Session) -> None:
    form = {
        "cluster": str(sim_env.cluster_id),
        "group": "lifeline:breakglass",
        "cluster_role": "view",
        "lifetime": "2",
        "lifetime_unit": "hours",
        "key_type": "ecdsa-p256",
        "custody": "server",
    }
    response = client.post("/credentials", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 204, response.text
    target = response.headers["HX-Redirect"]
    credential = session.scalar(select(Credential).order_by(Credential.id.desc()))
    assert credential is not None and target.endswith(f"/credentials/{credential.id}")
    # The steps ran in the background task; the partial shows them, and stops polling when done.
    partial = client.get(target, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text
    for label in (
        "CertificateSigningRequest created",
        "CSR approved",
        "Certificate issued",
        "ClusterRoleBinding created",
        "Verified against the cluster",
        "Stored",
    ):
        assert label in partial.text
    assert "hx-trigger" not in partial.text.split("<section")[0]
    assert "Download kubeconfig" in partial.text
    page = client.get(target)
    assert "<html" in page.text and "view" in page.text


def test_progress_partial_polls_while_issuing(
    client: TestClient,
    sim_env: SimEnv,
    session: Session,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    from app.services.audit import Actor
    from app.services.credentials.runs import start_issue
    from app.services.credentials.vocabulary import IssueRequest

    request = IssueRequest(
        cluster_pk=sim_env.cluster_id,
        username="lifeline:x",
        group=None,
        cluster_role="view",
        lifetime_seconds=900,
    )
    credential_id = start_issue(settings, session_factory, request, Actor(name="admin", role="admin"))
    partial = client.get(f"/credentials/{credential_id}", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 700ms"' in partial.text
    assert "Request accepted" in partial.text and "CertificateSigningRequest created" in partial.text
    table = client.get("/credentials", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in table.text and "issuing" in table.text


def test_fallback_identity_is_view_only_and_feeds_the_pollers(
    client: TestClient, sim_env: SimEnv, session: Session, vault: Vault
) -> None:
    response = client.post("/credentials/fallback", data={"lifetime_days": "30"}, follow_redirects=False)
    assert response.status_code == 303
    session.expire_all()
    fallback = session.scalar(select(Credential).where(Credential.kind == "fallback"))
    assert fallback is not None and fallback.status == "active", fallback and fallback.error
    assert (fallback.username, fallback.cluster_role) == ("lifeline:fallback", "view")
    identity = fallback_identity(session, vault, sim_env.cluster_id)
    assert identity is not None
    sim_env.sim.disconnect()
    auth = kube.KubeAuth.x509(identity.certificate_pem, identity.key_pem.decode())
    with kube.connect(sim_env.sim.url, sim_env.sim.ca_pem, auth) as conn:
        assert conn.whoami().username == "lifeline:fallback"
        assert conn.can_i("list", "pods", namespace="kube-system")
        assert not conn.can_i("delete", "pods", namespace="kube-system")
    # A second click does not issue another one.
    client.post("/credentials/fallback", data={"lifetime_days": "30"})
    assert len(list(session.scalars(select(Credential).where(Credential.kind == "fallback")))) == 1


def test_reverify_job_records_results(
    client: TestClient,
    sim_env: SimEnv,
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
) -> None:
    created = client.post(
        f"/api/v1/clusters/{sim_env.cluster_name}/credentials", json={"lifetime_seconds": 900}
    )
    assert created.status_code == 201
    assert credentials_job.run_once(settings, session_factory) == 1
    session.expire_all()
    credential = session.get(Credential, created.json()["id"])
    assert credential is not None and credential.last_verified_ok is True
