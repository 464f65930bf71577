"""`lifeline simulate cluster` as a real process: serves, keeps its CA in the state dir, stops on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import free_port
from tests.factories import SAMPLE_MANIFESTS
from tests.fixtures.kube import Kubectl


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "simulate", "cluster", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90  # a start-up bound for a loaded machine, not a target
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "simulator did not start"
        time.sleep(0.1)


def test_simulate_cluster_serves_and_keeps_its_ca(kubectl: str, tmp_path: Path) -> None:
    manifests = tmp_path / "dump.yaml"
    manifests.write_text(yaml.safe_dump_all(SAMPLE_MANIFESTS))
    state = tmp_path / "state"
    kubeconfig = tmp_path / "admin.kubeconfig"
    port = free_port()
    args = ["--manifests", str(manifests), "--port", str(port), "--state-dir", str(state)]
    proc = start([*args, "--write-kubeconfig", str(kubeconfig), "--disconnected"])
    try:
        wait_for(kubeconfig, proc)
        run = Kubectl(kubectl, kubeconfig)
        assert "ip-10-0-1-10.ec2.internal" in run("get", "nodes").stdout
        status = run("get", "--raw", "/-/status").stdout
        assert json.loads(status)["connected"] is False
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert f"https://127.0.0.1:{port}" in out
    assert (state / "ca.key").stat().st_mode & 0o777 == 0o600
    first_ca = (state / "ca.crt").read_text()
    first_id = json.loads((state / "cluster.json").read_text())["cluster_uid"]

    kubeconfig.unlink()
    proc = start([*args, "--write-kubeconfig", str(kubeconfig)])
    try:
        wait_for(kubeconfig, proc)
        assert (state / "ca.crt").read_text() == first_ca
        assert json.loads((state / "cluster.json").read_text())["cluster_uid"] == first_id
        assert "ip-10-0-1-11.ec2.internal" in Kubectl(kubectl, kubeconfig)("get", "nodes").stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def test_simulate_cluster_rejects_bad_manifests(tmp_path: Path) -> None:
    manifests = tmp_path / "bad.yaml"
    manifests.write_text("apiVersion: v1\nkind: Pod\nmetadata: {}\n")
    proc = start(["--manifests", str(manifests)])
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "document 1: Pod has no metadata.name" in err
