"""The demo fleet: AWS as moto serves it, the disconnect switch, and `lifeline demo` as a real process."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.integrations.aws import AwsClients
from app.integrations.eks_token import build_token
from app.integrations.kube.client import KubeAuth, KubeUnauthorized, connect
from lifeline_demo import web as demo_web
from lifeline_demo.fleet import DEMO_OUTPOSTS, DemoFleet
from tests.conftest import free_port


@pytest.fixture
def demo_fleet(aws_endpoint: str) -> Iterator[DemoFleet]:
    fleet = DemoFleet(endpoint_url=aws_endpoint).start()
    yield fleet
    fleet.stop()


def test_describe_cluster_carries_the_local_cluster_facts(demo_fleet: DemoFleet) -> None:
    eks = demo_fleet.aws().client("eks", "us-west-2")
    assert sorted(eks.list_clusters()["clusters"]) == ["mine-site-local", "plant7-local"]
    cluster = eks.describe_cluster(name="plant7-local")["cluster"]
    sim = demo_fleet.clusters["plant7-local"]
    assert cluster["id"] == sim.cluster_uid
    # An endpoint named as EKS names them, served on the control-plane IPs (loopback addresses).
    assert cluster["endpoint"] == sim.endpoint
    assert re.fullmatch(r"https://[0-9A-F]{32}\.gr7\.us-west-2\.eks\.amazonaws\.com:\d+", sim.endpoint)
    assert sim.addresses == ("127.20.0.11", "127.20.0.12", "127.20.0.13")
    assert base64.b64decode(cluster["certificateAuthority"]["data"]).decode() == sim.ca_pem
    assert cluster["outpostConfig"]["outpostArns"] == [
        "arn:aws:outposts:us-west-2:111122223333:outpost/op-0f1e2d3c4b5a69781"
    ]
    mine = eks.describe_cluster(name="mine-site-local")["cluster"]
    assert mine["health"]["issues"][0]["code"] == "ResourceLimitExceeded"
    ec2 = demo_fleet.aws().client("ec2", "us-west-2")
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "description", "Values": ["Amazon EKS plant7-local"]}]
    )
    assert sorted(n["PrivateIpAddress"] for n in enis["NetworkInterfaces"]) == [
        "127.20.0.11",
        "127.20.0.12",
        "127.20.0.13",
    ]


def test_connected_status_history_has_the_past_incidents(demo_fleet: DemoFleet) -> None:
    cloudwatch = demo_fleet.aws().client("cloudwatch", "eu-central-1")
    end = demo_fleet.started_at.replace(second=0, microsecond=0)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q0",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Outposts",
                        "MetricName": "ConnectedStatus",
                        "Dimensions": [{"Name": "OutpostId", "Value": "op-07c6b5a4938271606"}],
                    },
                    "Period": 60,
                    "Stat": "Average",
                },
            }
        ],
        StartTime=end - dt.timedelta(minutes=60),
        EndTime=end,
    )
    values = result["MetricDataResults"][0]["Values"]
    assert len(values) == 60
    # Werk Leipzig lost its link for 14 minutes, 50 minutes ago.
    assert values.count(0.0) == 14


def test_the_switch_drops_the_metric_and_iam_but_not_x509(
    demo_fleet: DemoFleet, app: FastAPI, client_as: Callable[..., TestClient]
) -> None:
    outpost = next(o for o in DEMO_OUTPOSTS if o.cluster == "werk-stuttgart-local")
    sim = demo_fleet.clusters["werk-stuttgart-local"]
    clients = AwsClients(endpoint_url=None, connect_timeout=2, read_timeout=5, max_attempts=1)
    token = build_token(clients, "eu-central-1", sim.cluster_uid).token
    cert, key = sim.issue_client_certificate("breakglass-sre", ["eks-breakglass"])
    demo_web.install(app, demo_fleet)
    viewer = client_as("viewer")
    assert viewer.get("/demo").status_code == 403
    client = client_as("responder")
    page = client.get("/demo")
    assert page.status_code == 200
    assert page.text.count("Disconnect") >= len(DEMO_OUTPOSTS)
    answer = client.post(
        f"/demo/outposts/{outpost.outpost_id}", data={"action": "disconnect"}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert not demo_fleet.is_connected(outpost.outpost_id)
    assert not sim.connected
    with connect(sim.url, sim.ca_pem, KubeAuth.bearer(token)) as iam, pytest.raises(KubeUnauthorized):
        iam.whoami()
    with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key)) as x509_conn:
        assert x509_conn.whoami().username == "breakglass-sre"
    stats = demo_fleet.cloudwatch("eu-central-1").get_metric_statistics(
        Namespace="AWS/Outposts",
        MetricName="ConnectedStatus",
        Dimensions=[{"Name": "OutpostId", "Value": outpost.outpost_id}],
        StartTime=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Minimum"],
    )
    assert min(p["Minimum"] for p in stats["Datapoints"]) == 0.0
    partial = client.post(
        f"/demo/outposts/{outpost.outpost_id}", data={"action": "connect"}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200 and "<html" not in partial.text
    assert sim.connected
    with connect(sim.url, sim.ca_pem, KubeAuth.bearer(token)) as iam:
        assert iam.whoami().username == "kubernetes-admin"
    assert client.post(f"/demo/outposts/{outpost.outpost_id}", data={"action": "explode"}).status_code == 422
    assert client.post("/demo/outposts/op-00000000000000000", data={"action": "connect"}).status_code == 404


def test_demo_control_is_absent_outside_a_demo(client: object) -> None:
    assert client.get("/demo").status_code == 404  # type: ignore[attr-defined]


def _refused(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) != 0


@pytest.mark.slow
def test_lifeline_demo_serves_a_populated_overview_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--port", str(port)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        overview = ""
        web = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        while time.monotonic() - started < 120 and not overview:
            assert proc.poll() is None, "".join(lines)[-3000:]
            login = next((line for line in lines if "Sign in:" in line), None)
            if login is None:
                time.sleep(0.3)
                continue
            username, password = login.split("Sign in:")[1].split("   (")[0].strip().split(" / ")
            try:
                web.get("/login")
                web.post(
                    "/login",
                    data={
                        "username": username,
                        "password": password,
                        "csrf_token": web.cookies.get("lifeline_csrf", ""),
                    },
                )
                response = web.get("/")
                if response.status_code == 200:
                    overview = response.text
            except httpx.HTTPError:
                time.sleep(0.5)
        assert overview, (
            "the overview was not served within 120 seconds (a bound for a loaded CI machine, not a target)"
        )
        for outpost in DEMO_OUTPOSTS:
            assert outpost.name in overview
        assert "demo-banner" in overview
        assert web.get("/demo").text.count("Disconnect") == len(DEMO_OUTPOSTS)
        # A throw-away demo gets a throw-away data key, so visitors can have Lifeline hold a key.
        assert "No data key is configured" not in web.get("/credentials").text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        reader.join(timeout=10)
        output = "".join(lines)
    assert proc.returncode == 0, output[-3000:]
    assert "demo stopped" in output
    # Everything ran in that one process: the dashboard, moto and every simulated cluster are gone.
    clusters = re.findall(
        r"Cluster:\s+\S+ at https://[0-9A-F]{32}\.gr7\.[a-z0-9-]+\.eks\.amazonaws\.com:(\d+) on (.+)", output
    )
    assert len(clusters) == 3, output[-3000:]
    addresses = [("127.0.0.1", port)]
    addresses += [(ip.strip(), int(p)) for p, ips in clusters for ip in ips.split(",")]
    assert all(ipaddress.ip_address(ip).is_loopback for ip, _ in addresses)
    moto = re.search(r"AWS \(moto\):\s+http://127\.0\.0\.1:(\d+)", output)
    assert moto is not None
    addresses.append(("127.0.0.1", int(moto.group(1))))
    assert all(_refused(p, ip) for ip, p in addresses)
