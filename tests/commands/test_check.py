"""`lifeline check --manifests`: formats, --fail-on exit codes, malformed input, no cluster, no AWS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from tests.factories import (
    FAILING,
    LOCAL_REGISTRY,
    MANIFEST_CHECKS,
    UNKNOWN_FROM_MANIFESTS,
    failing_cluster,
    ready_cluster,
)

runner = CliRunner()


def write(path: Path, objects: list[dict[str, Any]], *, as_list: bool = False) -> Path:
    if as_list:
        path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
    else:
        path.write_text(yaml.safe_dump_all(objects))
    return path


def run_check(*args: str) -> Any:
    return runner.invoke(cli, ["check", *args, "--local-registry", LOCAL_REGISTRY])


def findings_of(result: Any) -> dict[str, dict[str, Any]]:
    return {item["check_id"]: item for item in json.loads(result.stdout)}


def test_ready_cluster_passes_and_exits_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "ready.yaml", ready_cluster(), as_list=True)
    result = run_check("--manifests", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    findings = findings_of(result)
    for check_id in MANIFEST_CHECKS:
        assert findings[check_id]["status"] == "pass", check_id
    for check_id in UNKNOWN_FROM_MANIFESTS:
        assert findings[check_id]["status"] == "unknown", check_id
    # The JSON shape promised to pipelines (and the API).
    for item in findings.values():
        assert {"check_id", "status", "severity", "title", "evidence", "remediation"} <= set(item)


@pytest.mark.parametrize("check_id", MANIFEST_CHECKS)
def test_each_failing_fixture_through_the_cli(tmp_path: Path, check_id: str) -> None:
    path = write(tmp_path / f"{check_id}.yaml", failing_cluster(check_id))
    expected = FAILING[check_id][1]
    result = run_check("--manifests", str(path), "--format", "json", "--fail-on", expected)
    assert result.exit_code == 1, result.output
    finding = findings_of(result)[check_id]
    assert finding["status"] == expected
    assert all({"kind", "namespace", "name"} <= set(ev) for ev in finding["evidence"])


def test_fail_on_levels(tmp_path: Path) -> None:
    path = write(tmp_path / "warn.yaml", failing_cluster("ebs-snapshots"))  # a warn only
    assert run_check("--manifests", str(path), "--fail-on", "fail").exit_code == 0
    assert run_check("--manifests", str(path), "--fail-on", "warn").exit_code == 1
    assert run_check("--manifests", str(path), "--fail-on", "never").exit_code == 0


def test_table_output_names_objects_and_fixes(tmp_path: Path) -> None:
    path = write(tmp_path / "masters.yaml", failing_cluster("system-masters-binding"))
    result = run_check("--manifests", str(path))
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "CertificateSigningRequest/ops-admin" in result.stdout
    assert "fix: Issue break-glass certificates through Lifeline" in result.stdout
    assert "readiness score " in result.stdout


def test_sarif_is_valid_2_1_0(tmp_path: Path) -> None:
    path = write(tmp_path / "irsa.yaml", failing_cluster("iam-dependent-workloads"))
    result = run_check("--manifests", str(path), "--format", "sarif")
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids))
    for result_item in run["results"]:
        assert rules[result_item["ruleIndex"]]["id"] == result_item["ruleId"]
        assert result_item["message"]["text"]
        assert result_item.get("level", "none") in ("none", "note", "warning", "error")
        assert result_item["kind"] in ("fail", "review", "pass", "open", "informational", "notApplicable")
        for location in result_item["locations"]:
            assert location["physicalLocation"]["artifactLocation"]["uri"] == str(path)
    irsa = next(r for r in run["results"] if r["ruleId"] == "iam-dependent-workloads")
    assert irsa["level"] == "error"
    names = {loc["fullyQualifiedName"] for loc in irsa["locations"][0]["logicalLocations"]}
    assert "Deployment/shop/uploader" in names
    assert not any(r["ruleId"] == "ebs-snapshots" for r in run["results"])  # passes are not results


def test_malformed_manifest_names_the_document(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\n")
    result = run_check("--manifests", str(path))
    assert result.exit_code == 2
    assert f"{path}: document 2: Pod is missing `metadata`" in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = run_check("--manifests", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_real_command_gates_a_pipeline(tmp_path: Path) -> None:
    """The installed entry point, as CI would run it: exit status and JSON on stdout."""
    path = write(tmp_path / "ecr.yaml", failing_cluster("image-sources"))
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "check",
        "--manifests",
        str(path),
        "--format",
        "json",
        "--local-registry",
        LOCAL_REGISTRY,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 1, completed.stderr
    assert any(
        f["check_id"] == "image-sources" and f["status"] == "fail" for f in json.loads(completed.stdout)
    )
    stdin_run = subprocess.run(
        [sys.executable, "-m", "app.cli", "check", "--manifests", "-", "--fail-on", "never"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stdin_run.returncode == 0 and "image-sources" in stdin_run.stdout
