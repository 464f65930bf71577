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
    assert set(findings) == set(SPECS)  # 20, as README's table lists
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
