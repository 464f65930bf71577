"""Every static-IP path of a demo bundle works on this machine: the demo's endpoints are EKS-shaped
hostnames in no DNS, served on loopback control-plane IPs; each direct context and each hosts line
reaches the API server with the real kubectl, curl works with the bundle's key, certificate and CA,
`endpoint-dns` passes from the dashboard, and nothing generated points outside 127.0.0.0/8."""

from __future__ import annotations

import io
import ipaddress
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import fleet as fleet_job
from app.jobs import readiness as readiness_job
from app.models import Cluster
from app.services.readiness import records
from lifeline_demo.fleet import DEMO_REGIONS, DemoFleet
from tests.conftest import IN_CI

CLUSTER = "plant7-local"
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")


@pytest.fixture
def settings_overrides(data_key: str, aws_endpoint: str) -> dict[str, Any]:
    return {
        "data_key": data_key,
        "aws_endpoint_url": aws_endpoint,
        "aws_regions": list(DEMO_REGIONS),
        "credential_signing_timeout_seconds": 5,
        "readiness_poll_concurrency": 1,  # the test's one shared connection
    }


@pytest.fixture
def discovered_demo(
    aws_endpoint: str, app: FastAPI, session_factory: sessionmaker[Session]
) -> Iterator[DemoFleet]:
    """The demo fleet, discovered and polled once by the real jobs (as `lifeline demo` does)."""
    fleet = DemoFleet(endpoint_url=aws_endpoint).start()
    try:
        settings = app.state.settings
        report = fleet_job.poll_discovery(settings, session_factory)
        assert not report.errors, report.errors
        readiness_job.poll_clusters(settings, session_factory)
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        if IN_CI:
            pytest.fail("curl is missing")
        pytest.skip("curl is missing")
    return path


@pytest.fixture
def bundle(discovered_demo: DemoFleet, client_as: Any, tmp_path: Path) -> Path:
    """A break-glass bundle for plant7-local, downloaded over HTTP and unpacked as `unzip` would."""
    admin: TestClient = client_as("admin")
    issued = admin.post(f"/api/v1/clusters/{CLUSTER}/credentials", json={"lifetime_seconds": 3600})
    assert issued.status_code == 201, issued.text
    response = admin.get(f"/api/v1/credentials/{issued.json()['id']}/bundle")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        for info in archive.infolist():
            target = tmp_path / Path(info.filename).name
            target.write_bytes(archive.read(info))
            target.chmod(info.external_attr >> 16 & 0o777)
    return tmp_path


def _kubectl(
    kubectl: str, folder: Path, *args: str, hosts: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [kubectl, "--kubeconfig", str(folder / "kubeconfig"), "--request-timeout=10s", *args]
    if hosts is not None:
        # The hosts lines as /etc/hosts for this one command only (a private mount namespace), so the
        # test proves what `cat hosts >> /etc/hosts` does without changing this machine. DNS goes to
        # a loopback address where nothing listens: a name the hosts file lacks fails at once, and no
        # query leaves 127.0.0.0/8.
        resolv = folder / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.9\noptions timeout:1 attempts:1\n")
        inner = 'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
        command = ["unshare", "--mount", "sh", "-c", inner, str(hosts), str(resolv), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _etc_hosts_with(folder: Path, lines: list[str]) -> Path:
    path = folder / f"etc-hosts-{len(list(folder.glob('etc-hosts-*')))}"
    path.write_text(Path("/etc/hosts").read_text() + "".join(f"{line}\n" for line in lines))
    return path


def test_every_direct_context_works_with_kubectl_and_the_name_is_in_no_dns(
    bundle: Path, discovered_demo: DemoFleet, kubectl: str
) -> None:
    config = yaml.safe_load((bundle / "kubeconfig").read_text())
    sim = discovered_demo.clusters[CLUSTER]
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    direct = [c for c in config["contexts"] if c["name"].endswith(tuple(f"-direct-{n}" for n in (1, 2, 3)))]
    assert len(direct) == 3  # one per control-plane IP
    servers = [clusters[c["context"]["cluster"]]["server"] for c in direct]
    assert servers == [f"https://{ip}:{sim.port}" for ip in sim.addresses]
    for context in direct:
        assert clusters[context["context"]["cluster"]]["tls-server-name"] == sim.endpoint_hostname
        answer = _kubectl(kubectl, bundle, "--context", context["name"], "get", "nodes")
        assert answer.returncode == 0, (context["name"], answer.stderr)
        assert "ip-" in answer.stdout or "NAME" in answer.stdout
    # The main context names the endpoint, which nothing outside the demo process resolves.
    main = _kubectl(
        kubectl,
        bundle,
        "--context",
        config["current-context"],
        "get",
        "nodes",
        hosts=_etc_hosts_with(bundle, []),
    )
    assert main.returncode != 0
    assert sim.endpoint_hostname.lower() in main.stderr.lower()


def test_the_main_context_works_with_each_hosts_line(
    bundle: Path, discovered_demo: DemoFleet, kubectl: str
) -> None:
    sim = discovered_demo.clusters[CLUSTER]
    lines = (bundle / "hosts").read_text().splitlines()
    assert lines == [f"{ip} {sim.endpoint_hostname}" for ip in sim.addresses]
    for line in lines:
        answer = _kubectl(kubectl, bundle, "get", "nodes", hosts=_etc_hosts_with(bundle, [line]))
        assert answer.returncode == 0, (line, answer.stderr)


def test_curl_works_with_the_bundles_key_certificate_and_ca(
    bundle: Path, discovered_demo: DemoFleet, curl: str
) -> None:
    sim = discovered_demo.clusters[CLUSTER]
    assert (bundle / "client.key").stat().st_mode & 0o777 == 0o600
    readme = (bundle / "README.txt").read_text()
    assert f"--resolve {sim.endpoint_hostname}:{sim.port}:{sim.addresses[0]}" in readme
    for ip in sim.addresses:
        answer = subprocess.run(
            [
                curl,
                "--silent",
                "--show-error",
                "--fail",
                "--cacert",
                str(bundle / "ca.crt"),
                "--cert",
                str(bundle / "client.crt"),
                "--key",
                str(bundle / "client.key"),
                "--resolve",
                f"{sim.endpoint_hostname}:{sim.port}:{ip}",
                f"https://{sim.endpoint_hostname}:{sim.port}/apis/authentication.k8s.io/v1/selfsubjectreviews",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert answer.returncode == 0, (ip, answer.stderr)
        assert '"username":"lifeline:admin-1"' in answer.stdout.replace(" ", "")


def test_endpoint_dns_passes_in_the_demo(discovered_demo: DemoFleet, session: Session) -> None:
    cluster = session.scalars(select(Cluster).where(Cluster.name == CLUSTER)).one()
    sim = discovered_demo.clusters[CLUSTER]
    assert cluster.endpoint == sim.endpoint
    findings = {
        f.check_id: f for f in records.current_findings(session, cluster, records.get_state(session, cluster))
    }
    dns = findings["endpoint-dns"]
    assert dns.status.value == "pass", dns.summary
    assert sim.endpoint_hostname in dns.summary


def test_nothing_generated_for_the_demo_points_outside_loopback(
    bundle: Path, discovered_demo: DemoFleet, session: Session
) -> None:
    texts = {name: (bundle / name).read_text() for name in ("kubeconfig", "hosts", "README.txt")}
    texts["fleet hosts lines"] = "\n".join(discovered_demo.hosts_lines())
    state = records.get_state(session, session.scalars(select(Cluster).where(Cluster.name == CLUSTER)).one())
    assert state is not None
    texts["readiness facts"] = yaml.safe_dump(state.facts)
    for name, text in texts.items():
        found = IPV4.findall(text)
        assert found, f"{name} names no address at all"
        outside = [ip for ip in found if not ipaddress.ip_address(ip).is_loopback]
        assert outside == [], f"{name} points outside 127.0.0.0/8: {outside}"
