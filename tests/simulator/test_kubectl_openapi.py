"""Issue 14: kubectl's default validation works against the simulator (OpenAPI v2/v3, fieldValidation).

One simulator per reported version (the dispatcher /usr/bin/kubectl then runs kubectl 1.29 and 1.31),
shared by the module; each test uses its own namespace so order does not matter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeline_simulator import SimulatedCluster
from lifeline_simulator.openapi import v2_protobuf
from tests.factories import SAMPLE_MANIFESTS, make_csr
from tests.fixtures.kube import Kubectl

VERSIONS = ("1.29.14", "1.31.9")
DEMO = sorted((Path(__file__).parents[2] / "lifeline_demo" / "manifests").glob("*.yaml"))

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: c
        image: nginx:1.27
"""


@pytest.fixture(scope="module", params=VERSIONS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    binary = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not Path(binary).exists():
        pytest.fail("kubectl is missing") if os.environ.get("CI") else pytest.skip("kubectl is missing")
    sim = SimulatedCluster(name="battery", manifests=SAMPLE_MANIFESTS, kubernetes_version=request.param)
    sim.start()
    home = tmp_path_factory.mktemp(f"kubectl-{request.param}")
    try:
        yield Kubectl(binary, sim.write_admin_kubeconfig(home / "admin.kubeconfig"))
    finally:
        sim.stop()


def _namespace(run: Kubectl, name: str) -> str:
    run("create", "namespace", name)
    return name


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_dispatcher_runs_the_matching_client(cluster: Kubectl) -> None:
    out = cluster("version").stdout
    server = next(line for line in out.splitlines() if line.startswith("Server Version"))
    client = next(line for line in out.splitlines() if line.startswith("Client Version"))
    minor = lambda line: line.split(": v")[1].split(".")[:2]  # noqa: E731
    assert minor(server) == minor(client)
    assert server.endswith("-eks-local")


def test_apply_validates_by_default_and_is_idempotent(cluster: Kubectl, tmp_path: Path) -> None:
    ns = _namespace(cluster, "apply-ok")
    manifest = _write(tmp_path, "web.yaml", DEPLOYMENT.format(ns=ns))
    first = cluster("apply", "-f", str(manifest))
    assert first.stdout.strip() == "deployment.apps/web created"
    assert "failed to download openapi" not in first.stderr
    again = cluster("apply", "-f", str(manifest))
    assert again.stdout.strip() == "deployment.apps/web unchanged"


def test_unknown_field_is_refused_with_the_servers_message(cluster: Kubectl, tmp_path: Path) -> None:
    ns = _namespace(cluster, "strict")
    bad = DEPLOYMENT.format(ns=ns).replace("  replicas: 2\n", "  replicas: 2\n  bogus: 1\n")
    manifest = _write(tmp_path, "bad.yaml", bad)
    refused = cluster("create", "-f", str(manifest), check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(
        'Deployment in version "v1" cannot be handled as a Deployment: '
        'strict decoding error: unknown field "spec.bogus"'
    )
    assert "Error from server (BadRequest)" in refused.stderr
    warned = cluster("create", "-f", str(manifest), "--validate=warn")
    assert 'Warning: unknown field "spec.bogus"' in warned.stderr
    assert warned.stdout.strip() == "deployment.apps/web created"
    stored = cluster("get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec}").stdout
    assert "bogus" not in stored  # dropped, as the typed API server drops it


def test_unknown_field_in_a_patch_is_refused(cluster: Kubectl, tmp_path: Path) -> None:
    ns = _namespace(cluster, "strict-patch")
    cluster("apply", "-f", str(_write(tmp_path, "web.yaml", DEPLOYMENT.format(ns=ns))))
    typo = "        image: x\n        imag: y\n"
    bad = DEPLOYMENT.format(ns=ns).replace("        image: nginx:1.27\n", typo)
    refused = cluster("apply", "-f", str(_write(tmp_path, "bad.yaml", bad)), check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(
        'strict decoding error: unknown field "spec.template.spec.containers[0].imag"'
    )


def test_create_f_of_the_guides_admin_csr(cluster: Kubectl, tmp_path: Path) -> None:
    csr_pem, _ = make_csr("admin")
    import base64

    body = base64.b64encode(csr_pem.encode()).decode()
    manifest = _write(
        tmp_path,
        "admin-csr.yaml",
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\n"
        f"metadata:\n  name: admin-csr\nspec:\n  signerName: kubernetes.io/kube-apiserver-client\n"
        f"  request: {body}\n  usages:\n  - client auth\n",
    )
    created = cluster("create", "-f", str(manifest))
    assert created.stdout.strip() == "certificatesigningrequest.certificates.k8s.io/admin-csr created"
    row = cluster("get", "csr", "admin-csr").stdout.splitlines()[1].split()
    assert row[0] == "admin-csr"
    assert row[-1] == "Pending"


def test_edit_with_kube_editor(cluster: Kubectl, tmp_path: Path) -> None:
    ns = _namespace(cluster, "edit")
    cluster("apply", "-f", str(_write(tmp_path, "web.yaml", DEPLOYMENT.format(ns=ns))))
    editor = _write(tmp_path, "editor.sh", "#!/bin/sh\nsed -i 's/replicas: 2/replicas: 5/' \"$1\"\n")
    editor.chmod(0o755)
    result = subprocess.run(
        [cluster.binary, "--kubeconfig", str(cluster.kubeconfig), "edit", "deployment/web", "-n", ns],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBE_EDITOR": str(editor)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deployment.apps/web edited"
    assert cluster("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout == "5"


def test_explain_pod_spec_tolerations(cluster: Kubectl) -> None:
    out = cluster("explain", "pod.spec.tolerations").stdout
    lines = [line.strip() for line in out.splitlines()]
    assert "KIND:       Pod" in lines
    assert "FIELD: tolerations <[]Toleration>" in lines
    assert any(line.startswith("tolerationSeconds\t<integer>") for line in lines)


def test_demo_manifests_apply_to_an_empty_cluster(tmp_path: Path) -> None:
    binary = shutil.which("kubectl") or "/usr/bin/kubectl"
    assert DEMO, "no demo manifests found"
    for manifest in DEMO:
        with SimulatedCluster(name="empty") as sim:
            run = Kubectl(binary, sim.write_admin_kubeconfig(tmp_path / f"{manifest.stem}.kubeconfig"))
            result = run("apply", "-f", str(manifest), check=False)
            assert result.returncode == 0, f"{manifest.name}: {result.stderr}"
            # The dumps hold StatefulSets with their pods and claims: as on a real cluster, the
            # controller creates those first, so kubectl then patches them (and says so).
            warnings = [line for line in result.stderr.splitlines() if "Warning" in line]
            assert all(
                "is missing the kubectl.kubernetes.io/last-applied-configuration annotation" in w
                and ("resource pods/" in w or "resource persistentvolumeclaims/" in w)
                for w in warnings
            ), result.stderr
            assert result.stdout.count(" created") >= 5


def test_openapi_v2_protobuf_carries_the_definitions() -> None:
    body = v2_protobuf("1.30.9")
    assert body.startswith(b"\x0a\x032.0")  # field 1 (swagger) = "2.0"
    assert b"io.k8s.api.apps.v1.Deployment" in body
    assert b"x-kubernetes-group-version-kind" in body
