"""`lifeline check` on inputs as real tools print them: typed Lists from `kubectl cluster-info dump`,
objects with only `generateName`, unrendered Helm templates and values files; and every catalogue
topic, attestations included, in its output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.services.readiness.specs import ATTESTATION_TOPICS, SPECS
from tests.factories import LOCAL_REGISTRY, ready_cluster

runner = CliRunner()


def run_check(path: Path) -> Any:
    return runner.invoke(
        cli, ["check", "--manifests", str(path), "--format", "json", "--local-registry", LOCAL_REGISTRY]
    )


def test_output_has_every_catalogue_topic(tmp_path: Path) -> None:
    path = tmp_path / "ready.yaml"
    path.write_text(yaml.safe_dump_all(ready_cluster()))
    result = run_check(path)
    findings = {f["check_id"]: f for f in json.loads(result.stdout)}
    assert set(findings) == set(SPECS)  # 21, as README's table lists
    for topic in ATTESTATION_TOPICS:
        assert findings[topic]["status"] == "unknown"
    assert result.exit_code == 0  # unknown attestations do not fail a CI gate


def test_typed_list_items_without_kind(tmp_path: Path) -> None:
    """`kubectl cluster-info dump` prints NodeList/PodList items with no `kind` of their own."""
    nodes = [o for o in ready_cluster() if o["kind"] == "Node"]
    rest = [o for o in ready_cluster() if o["kind"] != "Node"]
    for item in nodes:
        del item["kind"], item["apiVersion"]
    path = tmp_path / "dump.yaml"
    path.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "NodeList", "items": nodes}, *rest]))
    result = run_check(path)
    assert result.exit_code == 0, result.stderr
    spare = {f["check_id"]: f for f in json.loads(result.stdout)}["spare-capacity"]
    assert spare["status"] == "pass" and len(spare["evidence"]) == 3


def test_generate_name_only(tmp_path: Path) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": "migrate-", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "docker.io/migrate:1"}]}}},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump_all([*ready_cluster(), job]))
    result = run_check(path)
    assert result.exit_code in (0, 1), result.stderr
    images = {f["check_id"]: f for f in json.loads(result.stdout)}["image-sources"]
    assert any(e["name"] == "migrate-" for e in images["evidence"])


def test_unrendered_helm_template_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        '  name: {{ .Release.Name }}\n  labels: {{- include "x" . }}\n'
    )
    result = run_check(path)
    assert result.exit_code == 2
    assert "helm template" in result.stderr


def test_values_file_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("replicaCount: 2\nimage:\n  repository: nginx\n  tag: 1.27\n")
    result = run_check(path)
    assert result.exit_code == 2
    assert "Helm values file" in result.stderr


def test_one_bad_document_does_not_stop_the_rest(tmp_path: Path) -> None:
    """Invalid YAML in document 2 and a kind-less item: both named, everything else judged."""
    good = yaml.safe_dump_all(ready_cluster())
    irsa = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "uploader", "namespace": "shop"},
        "spec": {
            "template": {
                "metadata": {"annotations": {}},
                "spec": {
                    "serviceAccountName": "uploader",
                    "containers": [{"name": "app", "image": f"{LOCAL_REGISTRY}/uploader:1"}],
                },
            }
        },
    }
    text = (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
        "---\nkind: ConfigMap\nmetadata: {name: [unclosed\n"
        "---\n" + good + "---\napiVersion: v1\nkind: List\nitems:\n- {metadata: {name: nokind}}\n"
        "---\n" + yaml.safe_dump(irsa)
    )
    path = tmp_path / "mixed.yaml"
    path.write_text(text)
    result = run_check(path)
    assert result.exit_code == 2, result.stderr  # incomplete input is not a clean pass
    assert f"skipped {path}: document 2: invalid YAML at line 7" in result.stderr
    assert "item 1: missing `kind`" in result.stderr
    findings = {f["check_id"]: f for f in json.loads(result.stdout)}
    assert set(findings) == set(SPECS) | set(ATTESTATION_TOPICS)
    # the documents after the bad ones were read: the last Deployment is in the evidence
    names = [e["name"] for f in findings.values() for e in f["evidence"]]
    assert "uploader" in names


def test_skip_invalid_exits_by_the_findings(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump_all(ready_cluster()) + "---\n: : nonsense: [\n")
    result = runner.invoke(
        cli,
        ["check", "--manifests", str(path), "--local-registry", LOCAL_REGISTRY, "--skip-invalid"],
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 document(s) or item(s) could not be read" in result.stdout
    assert "skipped" in result.stderr


def test_sarif_names_the_skipped_documents(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump_all(ready_cluster()) + "---\napiVersion: v1\nkind: Pod\n")
    result = runner.invoke(cli, ["check", "--manifests", str(path), "--format", "sarif"])
    invocation = json.loads(result.stdout)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert "Pod is missing `metadata`" in note["message"]["text"]


def test_only_bad_documents_check_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("%YAML 1.1\n---\n[1, 2]\n")
    result = run_check(path)
    assert result.exit_code == 2
    assert "document 1: expected a Kubernetes object" in result.stderr
    assert "nothing was checked" in result.stderr
