"""Fixtures for the simulator tests: a small cluster dump, kubeconfigs, CSRs and a kubectl runner."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.integrations.kube.client import KubeAuth, KubeConnection, connect
from lifeline_simulator import SimulatedCluster


def node(name: str, ip: str, instance_type: str = "m5.large", ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"node.kubernetes.io/instance-type": instance_type, "kubernetes.io/os": "linux"},
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "addresses": [{"type": "InternalIP", "address": ip}],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "b",
                "containerRuntimeVersion": "containerd://1.7.11",
                "kernelVersion": "5.10.205",
                "kubeProxyVersion": "v1.30.9-eks",
                "kubeletVersion": "v1.30.9-eks",
                "machineID": "m",
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2",
                "systemUUID": "s",
            },
        },
    }


def pod(
    namespace: str, name: str, image: str, labels: dict[str, str] | None = None, phase: str = "Running"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"nodeName": "ip-10-0-1-10.ec2.internal", "containers": [{"name": "main", "image": image}]},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {
                    "name": "main",
                    "image": image,
                    "imageID": "",
                    "ready": phase == "Running",
                    "restartCount": 0,
                }
            ],
        },
    }


SAMPLE_MANIFESTS: list[dict[str, Any]] = [
    node("ip-10-0-1-10.ec2.internal", "10.0.1.10"),
    node("ip-10-0-1-11.ec2.internal", "10.0.1.11", "c5.xlarge"),
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    pod(
        "shop",
        "web-1",
        "111122223333.dkr.ecr.us-west-2.amazonaws.com/web:1.4",
        {"app": "web", "tier": "front"},
    ),
    pod(
        "shop",
        "web-2",
        "111122223333.dkr.ecr.us-west-2.amazonaws.com/web:1.4",
        {"app": "web", "tier": "front"},
    ),
    pod("shop", "db-0", "postgres:16", {"app": "db"}),
    pod("kube-system", "coredns-1", "coredns:1.11", {"k8s-app": "kube-dns"}),
    {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "gp2", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp2"},
    },
    {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-db-0", "namespace": "shop"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "gp2",
            "resources": {"requests": {"storage": "10Gi"}},
        },
        "status": {"phase": "Bound"},
    },
]


@pytest.fixture
def sample_cluster(simulated_cluster: Callable[..., SimulatedCluster]) -> SimulatedCluster:
    return simulated_cluster(name="plant7-local", manifests=SAMPLE_MANIFESTS)


@pytest.fixture
def admin(sample_cluster: SimulatedCluster) -> Iterator[KubeConnection]:
    """The adapter with a system:masters x509 credential."""
    cert, key = sample_cluster.issue_client_certificate("kubernetes-admin", ["system:masters"])
    with connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(cert, key)) as conn:
        yield conn


def make_csr(common_name: str, organisations: tuple[str, ...] = ()) -> tuple[str, str]:
    """A PEM CSR and its key (CN=user, O=groups)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organisations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def write_kubeconfig(
    path: Path, sim: SimulatedCluster, *, cert_key: tuple[str, str] | None = None, token: str | None = None
) -> Path:
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    user: dict[str, Any] = {}
    if cert_key:
        user = {"client-certificate-data": b64(cert_key[0]), "client-key-data": b64(cert_key[1])}
    if token:
        user = {"token": token}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "sim", "cluster": {"server": sim.url, "certificate-authority-data": b64(sim.ca_pem)}}
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "u"}}],
        "current-context": "sim",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class Kubectl:
    binary: str
    kubeconfig: Path

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, "--kubeconfig", str(self.kubeconfig), "--request-timeout=20s", *args],
            capture_output=True,
            text=True,
            timeout=60,
            input=stdin,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result


@pytest.fixture
def admin_kubectl(kubectl: str, sample_cluster: SimulatedCluster, tmp_path: Path) -> Kubectl:
    """Real kubectl with the cluster creator's x509 kubeconfig (written by the simulator)."""
    return Kubectl(kubectl, sample_cluster.write_admin_kubeconfig(tmp_path / "admin.kubeconfig"))
