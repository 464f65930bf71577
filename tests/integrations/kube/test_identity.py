"""The one identity choice (app.integrations.kube.identity) against the simulated API server: an EKS
IAM token first, else the x509 identity; the credentials issuer uses the same choice."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.integrations.aws import AwsClients
from app.integrations.eks_token import TokenCache
from app.integrations.kube.identity import IAM, NONE, X509, choose_identity
from app.integrations.kube.kubeconfig import read_kubeconfig
from app.integrations.kube.operations import IssuerUnavailable, KubeClusterApi, cluster_access
from app.integrations.kube.types import ClusterTarget, Identity, KubeAuth

CLIENTS = AwsClients(endpoint_url=None, connect_timeout=2, read_timeout=5, max_attempts=1)


def target_of(sim: Any) -> ClusterTarget:
    return ClusterTarget(sim.name, "us-west-2", sim.url, sim.ca_data, sim.cluster_uid)


def viewer(sim: Any) -> Identity:
    cert, key = sim.issue_client_certificate("lifeline:fallback", ("lifeline:fallback",))
    return Identity(KubeAuth.x509(cert, key), "fallback identity")


def test_iam_first_then_x509(simulated_cluster: Callable[..., Any]) -> None:
    sim = simulated_cluster(name="choice")
    tokens = TokenCache(CLIENTS)
    first = choose_identity(target_of(sim), tokens=tokens, x509=viewer(sim), x509_missing="-", timeout=5)
    assert first.path == IAM and first.connection is not None
    assert first.summary == {"iam": "ok", "x509": "not tried: IAM was accepted"}
    first.connection.close()
    both = choose_identity(
        target_of(sim), tokens=tokens, x509=viewer(sim), x509_missing="-", timeout=5, probe_both=True
    )
    assert both.path == IAM and both.summary == {"iam": "ok", "x509": "ok"}
    assert both.connection is not None
    both.connection.close()
    sim.disconnect()
    fallback = choose_identity(target_of(sim), tokens=tokens, x509=viewer(sim), x509_missing="-", timeout=5)
    assert fallback.path == X509 and fallback.source == "fallback identity" and fallback.iam_error
    assert fallback.connection is not None
    assert fallback.connection.whoami().username == "lifeline:fallback"
    fallback.connection.close()
    none = choose_identity(target_of(sim), tokens=tokens, x509=None, x509_missing="nothing", timeout=5)
    assert none.path == NONE and none.connection is None and none.x509_error == "nothing"


def _with_file_paths(path: Path) -> Path:
    config = yaml.safe_load(path.read_text())
    user = config["users"][0]["user"]
    for data_key, file_key in (
        ("client-certificate-data", "client-certificate"),
        ("client-key-data", "client-key"),
    ):
        (path.parent / file_key).write_bytes(base64.b64decode(user.pop(data_key)))
        user[file_key] = file_key
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_issuer_uses_the_same_choice(simulated_cluster: Callable[..., Any], tmp_path: Path) -> None:
    sim = simulated_cluster(name="issuer")
    kubeconfig = _with_file_paths(sim.write_admin_kubeconfig(tmp_path / "ops" / "admin.yaml"))
    assert read_kubeconfig(kubeconfig).current() is not None
    with_kubeconfig = cluster_access(clients=CLIENTS, issuer_kubeconfig=kubeconfig, timeout=5)
    without = cluster_access(clients=CLIENTS, issuer_kubeconfig=None, timeout=5)
    # The operator's kubeconfig is an explicit override: tried first, even while IAM works.
    api = with_kubeconfig.issuer(target_of(sim))
    assert isinstance(api, KubeClusterApi) and api.description == "issuer kubeconfig"
    api.close()
    api = without.issuer(target_of(sim))
    assert isinstance(api, KubeClusterApi) and api.description == "EKS IAM token"
    api.close()
    sim.disconnect()
    api = with_kubeconfig.issuer(target_of(sim))
    assert isinstance(api, KubeClusterApi) and api.description == "issuer kubeconfig"
    assert api.whoami().username == "kubernetes-admin"
    api.close()
    with pytest.raises(IssuerUnavailable, match=r"LIFELINE_ISSUER_KUBECONFIG is not set.*no issuer identity"):
        without.issuer(target_of(sim))


def test_an_identity_without_the_rights_needed_is_passed_over(simulated_cluster: Callable[..., Any]) -> None:
    from app.integrations.kube.operations import ISSUER_NEEDS

    sim = simulated_cluster(name="rights")
    sim.disconnect()
    choice = choose_identity(
        target_of(sim),
        tokens=TokenCache(CLIENTS),
        x509=viewer(sim),
        x509_missing="-",
        timeout=5,
        requires=ISSUER_NEEDS,
    )
    assert choice.path == NONE and choice.connection is None
    assert choice.x509_error is not None
    assert "may not create certificatesigningrequests" in choice.x509_error
