"""The demo fleet behind `lifeline demo`: moto's AWS on loopback plus three simulated local clusters.

Six Outposts in two regions report CloudWatch `ConnectedStatus` (six hours of history with a few
past incidents, then a datapoint every minute from a background thread); three of them run an EKS
local cluster whose DescribeCluster (moto's backend objects, patched) carries `outpostConfig`, `id`,
`health` and the simulator's real CA and endpoint; control-plane ENIs are described
`Amazon EKS <name>`. `set_connected()` flips one Outpost: its metric drops to 0 from the next
minute, IAM tokens fail on its cluster, x509 keeps working.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.integrations.aws import AwsClients
from lifeline_demo.resolver import DemoResolver
from lifeline_simulator.cluster import SimulatedCluster, utc_now

log = logging.getLogger("lifeline.demo")
MANIFESTS = Path(__file__).parent / "manifests"
MOTO_ACCOUNT = "123456789012"  # moto's account for any credentials
DEMO_REGIONS = ("us-west-2", "eu-central-1")
HISTORY = dt.timedelta(hours=24)


@dataclass(frozen=True)
class DemoOutpost:
    outpost_id: str
    name: str
    region: str
    owner_account: str
    # Past outages as (minutes ago the outage started, minutes it lasted).
    outages: tuple[tuple[int, int], ...] = ()
    cluster: str | None = None
    cluster_health: tuple[dict[str, Any], ...] = ()
    control_plane_type: str = "m5.large"
    eni_ips: tuple[str, ...] = ()

    @property
    def arn(self) -> str:
        return f"arn:aws:outposts:{self.region}:{self.owner_account}:outpost/{self.outpost_id}"

    @property
    def endpoint_hostname(self) -> str:
        """An endpoint name shaped as EKS gives them (32 hex digits, a cell, the Region); stable
        across starts. It is in no DNS: the demo resolves it itself (see `lifeline_demo.resolver`)."""
        digest = hashlib.sha256(f"{self.region}/{self.cluster}".encode()).hexdigest()[:32].upper()
        return f"{digest}.gr7.{self.region}.eks.amazonaws.com"


DEMO_OUTPOSTS: tuple[DemoOutpost, ...] = (
    DemoOutpost(
        "op-0f1e2d3c4b5a69781",
        "Plant 7 Reno, rack A",
        "us-west-2",
        "111122223333",
        outages=((1020, 45), (185, 23)),
        cluster="plant7-local",
        eni_ips=("127.20.0.11", "127.20.0.12", "127.20.0.13"),
    ),
    DemoOutpost(
        "op-0f1e2d3c4b5a69782",
        "Plant 7 Reno, rack B",
        "us-west-2",
        "111122223333",
        outages=((1020, 45), (185, 23)),
    ),
    DemoOutpost(
        "op-0a9b8c7d6e5f40013",
        "Elko mine site",
        "us-west-2",
        "111122223333",
        outages=((1310, 18), (760, 6), (300, 4), (95, 11), (31, 2)),
        cluster="mine-site-local",
        cluster_health=(
            {
                "code": "ResourceLimitExceeded",
                "message": "There is not enough capacity on the Outpost to launch or start the instance.",
                "resourceIds": ["i-0abc1234def567890"],
            },
        ),
        eni_ips=("127.30.0.11", "127.30.0.12", "127.30.0.13"),
    ),
    DemoOutpost("op-0a9b8c7d6e5f40014", "Boise distribution center", "us-west-2", "111122223333"),
    DemoOutpost(
        "op-07c6b5a4938271605",
        "Werk Stuttgart",
        "eu-central-1",
        "444455556666",
        outages=((720, 12), (240, 7)),
        cluster="werk-stuttgart-local",
        control_plane_type="m5.xlarge",
        eni_ips=("127.40.0.11", "127.40.0.12", "127.40.0.13"),
    ),
    DemoOutpost("op-07c6b5a4938271606", "Werk Leipzig", "eu-central-1", "444455556666", outages=((50, 14),)),
)


def _minute(ts: dt.datetime) -> dt.datetime:
    return ts.replace(second=0, microsecond=0)


@dataclass
class DemoFleet:
    """Starts and stops everything the demo needs; thread-safe `set_connected` for the control page.

    With `endpoint_url` set, an already running in-process moto server is used (tests).
    """

    clock: Callable[[], dt.datetime] = utc_now
    history: dt.timedelta = HISTORY
    outposts: tuple[DemoOutpost, ...] = DEMO_OUTPOSTS
    clusters: dict[str, SimulatedCluster] = field(default_factory=dict)
    endpoint_url: str = ""
    _connected: dict[str, bool] = field(default_factory=dict)
    _moto: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _feeder: threading.Thread | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    resolver: DemoResolver = field(default_factory=DemoResolver)
    started_at: dt.datetime = field(default_factory=utc_now)

    # ------------------------------------------------------------------ lifecycle

    def start(self, port: int = 0, *, seed_clusters: bool = True) -> DemoFleet:
        """moto, the simulated clusters and the metric history; EKS/EC2 too unless `seed_clusters`
        is False (then call `seed_clusters()` later, e.g. off the start-up path)."""
        self.started_at = self.clock()
        if not self.endpoint_url:
            from moto.server import ThreadedMotoServer

            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port or _free_port(), verbose=False)
            self._moto.start()
            self.endpoint_url = f"http://127.0.0.1:{self._moto._port}"
        try:
            for outpost in self.outposts:
                self._connected[outpost.outpost_id] = True
                if outpost.cluster:
                    # The API server listens on the control-plane ENI IPs (loopback addresses),
                    # under the endpoint's hostname, as an EKS local cluster's control plane does.
                    sim = SimulatedCluster(
                        name=outpost.cluster,
                        manifests=MANIFESTS / f"{outpost.cluster}.yaml",
                        endpoint_hostname=outpost.endpoint_hostname,
                        addresses=outpost.eni_ips,
                    )
                    self.clusters[outpost.cluster] = sim.start()
            self.resolver.install(self.hosts())
            self._seed_metrics()
            if seed_clusters:
                self.seed_clusters()
        except Exception:
            self.stop()
            raise
        self._feeder = threading.Thread(target=self._feed, name="demo-metrics", daemon=True)
        self._feeder.start()
        return self

    def hosts(self) -> dict[str, tuple[str, ...]]:
        """Endpoint hostname -> control-plane IPs of every demo cluster (what local DNS would answer)."""
        return {outpost.endpoint_hostname: outpost.eni_ips for outpost in self.outposts if outpost.cluster}

    def hosts_lines(self) -> list[str]:
        """The `/etc/hosts` lines that make the demo endpoints resolve for other programs (kubectl)."""
        return [f"{ip} {host}" for host, ips in self.hosts().items() for ip in ips]

    def stop(self) -> None:
        self.resolver.uninstall()
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(timeout=10)
        for sim in self.clusters.values():
            sim.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def aws(self) -> AwsClients:
        return AwsClients(endpoint_url=self.endpoint_url, connect_timeout=2, read_timeout=20, max_attempts=2)

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for moto, built once per (service, region): loading a model is slow."""
        with self._lock:
            if (service, region) not in self._clients:
                self._clients[(service, region)] = self.aws().client(service, region)
            return self._clients[(service, region)]

    def cloudwatch(self, region: str) -> Any:
        return self.client("cloudwatch", region)

    # ------------------------------------------------------------------ the disconnect switch

    def outpost(self, outpost_id: str) -> DemoOutpost:
        for outpost in self.outposts:
            if outpost.outpost_id == outpost_id:
                return outpost
        raise KeyError(f"no demo Outpost {outpost_id}")

    def is_connected(self, outpost_id: str) -> bool:
        return self._connected[outpost_id]

    def set_connected(self, outpost_id: str, connected: bool) -> None:
        """Flip one Outpost's service link: metric, IAM authentication of its cluster."""
        outpost = self.outpost(outpost_id)
        with self._lock:
            self._connected[outpost_id] = connected
            if outpost.cluster:
                sim = self.clusters[outpost.cluster]
                sim.connect() if connected else sim.disconnect()
        self._put_points(outpost, [(_minute(self.clock()), 1.0 if connected else 0.0)])
        log.info("demo: %s %s", outpost_id, "connected" if connected else "disconnected")

    # ------------------------------------------------------------------ AWS seeding

    def _put_points(self, outpost: DemoOutpost, points: list[tuple[dt.datetime, float]]) -> None:
        cloudwatch = self.cloudwatch(outpost.region)
        for start in range(0, len(points), 500):
            cloudwatch.put_metric_data(
                Namespace="AWS/Outposts",
                MetricData=[
                    {
                        "MetricName": "ConnectedStatus",
                        "Dimensions": [{"Name": "OutpostId", "Value": outpost.outpost_id}],
                        "Timestamp": ts,
                        "Value": value,
                        "Unit": "Count",
                    }
                    for ts, value in points[start : start + 500]
                ],
            )

    def history_points(self, outpost: DemoOutpost, now: dt.datetime) -> list[tuple[dt.datetime, float]]:
        """The seeded ConnectedStatus minutes (oldest first) up to the minute before `now`."""
        return self._history(outpost, now)

    def _history(self, outpost: DemoOutpost, now: dt.datetime) -> list[tuple[dt.datetime, float]]:
        end = _minute(now)
        minutes = int(self.history.total_seconds() // 60)
        down: set[int] = set()
        for started_ago, lasted in outpost.outages:
            down.update(range(started_ago - lasted + 1, started_ago + 1))
        # A minute partly down averages between 0 and 1, as CloudWatch reports an impaired link.
        return [
            (end - dt.timedelta(minutes=ago), 0.0 if ago in down else (0.5 if ago - 1 in down else 1.0))
            for ago in range(minutes, 0, -1)
        ]

    def _seed_metrics(self) -> None:
        now = self.started_at
        from moto.cloudwatch.models import cloudwatch_backends

        for outpost in self.outposts:
            # History goes straight into moto's backend (in-process): a day of minutes for six
            # Outposts through PutMetricData's XML would take most of the start-up time.
            backend = cloudwatch_backends[MOTO_ACCOUNT][outpost.region]
            backend.put_metric_data(
                "AWS/Outposts",
                [
                    {
                        "MetricName": "ConnectedStatus",
                        "Dimensions": [{"Name": "OutpostId", "Value": outpost.outpost_id}],
                        "Timestamp": ts.replace(tzinfo=None),  # moto stores naive UTC
                        "Value": value,
                        "Unit": "Count",
                    }
                    for ts, value in self._history(outpost, now)
                ],
            )

    def seed_clusters(self) -> None:
        """EKS clusters (DescribeCluster as a local cluster reports it) and control-plane ENIs."""
        for outpost in self.outposts:
            if outpost.cluster:
                self._seed_cluster(outpost)

    def _seed_cluster(self, outpost: DemoOutpost) -> None:
        from moto.eks.models import eks_backends

        assert outpost.cluster is not None
        sim = self.clusters[outpost.cluster]
        ec2 = self.client("ec2", outpost.region)
        vpc = ec2.create_vpc(CidrBlock=f"{outpost.eni_ips[0].rsplit('.', 2)[0]}.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{outpost.eni_ips[0].rsplit('.', 1)[0]}.0/24")[
            "Subnet"
        ]["SubnetId"]
        for ip in outpost.eni_ips:
            ec2.create_network_interface(
                SubnetId=subnet, PrivateIpAddress=ip, Description=f"Amazon EKS {outpost.cluster}"
            )
        eks = self.client("eks", outpost.region)
        eks.create_cluster(
            name=outpost.cluster,
            version="1.30",
            roleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/eks-local-cluster",
            resourcesVpcConfig={
                "subnetIds": [subnet],
                "endpointPrivateAccess": True,
                "endpointPublicAccess": False,
            },
        )
        # moto drops outpostConfig and has no id/health; its serializer returns these attributes.
        backend_cluster: Any = eks_backends[MOTO_ACCOUNT][outpost.region].clusters[outpost.cluster]
        backend_cluster.outpost_config = {
            "outpostArns": [outpost.arn],
            "controlPlaneInstanceType": outpost.control_plane_type,
        }
        backend_cluster.id = sim.cluster_uid
        backend_cluster.health = {"issues": list(outpost.cluster_health)}
        backend_cluster.certificate_authority = {"data": sim.ca_data}
        backend_cluster.endpoint = sim.endpoint
        backend_cluster.platformVersion = "eks-local-outposts.4"

    # ------------------------------------------------------------------ the minute feed

    def _feed(self) -> None:
        last = _minute(self.clock())
        while not self._stop.wait(1.0):
            now = _minute(self.clock())
            if now <= last:
                continue
            last = now
            for outpost in self.outposts:
                try:
                    self._put_points(outpost, [(now, 1.0 if self._connected[outpost.outpost_id] else 0.0)])
                except Exception:  # a failing put must not end the feed for the other Outposts
                    log.exception("demo: ConnectedStatus datapoint for %s failed", outpost.outpost_id)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
