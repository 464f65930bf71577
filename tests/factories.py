"""Builders for every test: rows in the database, AWS as moto serves it, certificates, and
Kubernetes objects (a cluster ready for a disconnect, one mutation per check that makes it fail).

Row builders flush (never commit) so each test's rows vanish with its transaction; the live-server
tests pass a committing session instead.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.db import upsert
from app.integrations import pki
from app.integrations.cloudwatch import Datapoint
from app.integrations.vault import Vault
from app.models import Cluster, ConnectedSample, Credential, HourlyRollup, Incident, Outpost, PollRun
from app.services.credentials.vocabulary import key_context

if TYPE_CHECKING:
    from lifeline_simulator import SimulatedCluster

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
ACCOUNT = "123456789012"
REGION = "us-west-2"
OUTPOST = "op-0123456789abcdef0"
_counter = itertools.count(1)


# ---------------------------------------------------------------- fleet rows


def outpost_id(n: int | None = None) -> str:
    return f"op-{(n if n is not None else next(_counter)):017x}"


def make_outposts(session: Session, count: int, region: str = "us-west-2", start: int = 1) -> list[Outpost]:
    outposts = [
        Outpost(outpost_id=outpost_id(start + i), name=f"Outpost {start + i}", region=region)
        for i in range(count)
    ]
    session.add_all(outposts)
    session.flush()
    return outposts


def make_outpost(
    session: Session,
    *,
    name: str | None = None,
    region: str = "us-west-2",
    state: str = "CONNECTED",
    state_since: dt.datetime | None = None,
    last_sample_at: dt.datetime | None = None,
    last_value: float | None = None,
    last_error: str | None = None,
    oid: str | None = None,
    **extra: object,
) -> Outpost:
    oid = oid or outpost_id()
    outpost = Outpost(
        outpost_id=oid,
        name=name or f"Outpost {oid[-4:]}",
        region=region,
        state=state,
        state_since=state_since,
        last_sample_at=last_sample_at,
        last_value=last_value
        if last_value is not None
        else {"CONNECTED": 1.0, "DISCONNECTED": 0.0}.get(state),
        last_error=last_error,
        last_error_at=NOW if last_error else None,
        **extra,
    )
    session.add(outpost)
    session.flush()
    return outpost


def make_cluster(
    session: Session,
    name: str = "edge-1",
    *,
    endpoint: str = "https://abc123.gr7.us-west-2.eks.amazonaws.com",
    ca: TestCA | None = None,
    region: str = "us-west-2",
    cluster_uid: str | None = None,
) -> Cluster:
    cluster = Cluster(
        name=name,
        region=region,
        endpoint=endpoint,
        certificate_authority=(ca or make_ca()).b64,
        cluster_uid=cluster_uid,
        health_issues=[],
    )
    session.add(cluster)
    session.flush()
    return cluster


def add_simulated_cluster(session: Session, sim: Any, name: str, region: str = "us-west-2") -> Cluster:
    """A fleet cluster whose cached endpoint and CA are a simulated cluster's."""
    cluster = Cluster(
        name=name,
        region=region,
        endpoint=sim.url,
        certificate_authority=sim.ca_data,
        cluster_uid=sim.cluster_uid,
        health_issues=[],
    )
    session.add(cluster)
    session.flush()
    return cluster


# ---------------------------------------------------------------- connectivity: CloudWatch in moto, rows


def cloudwatch(endpoint: str, region: str = "us-west-2") -> Any:
    return boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint)


def seed(
    endpoint: str,
    points: Iterable[tuple[str, dt.datetime, float]],
    region: str = "us-west-2",
) -> None:
    """put_metric_data ConnectedStatus datapoints (outpost_id, timestamp, value) into moto."""
    client = cloudwatch(endpoint, region)
    batch: list[dict[str, Any]] = []
    for outpost_id, ts, value in points:
        batch.append(
            {
                "MetricName": "ConnectedStatus",
                "Dimensions": [{"Name": "OutpostId", "Value": outpost_id}],
                "Timestamp": ts,
                "Value": value,
                "Unit": "Count",
            }
        )
        if len(batch) == 1000:
            client.put_metric_data(Namespace="AWS/Outposts", MetricData=batch)
            batch = []
    if batch:
        client.put_metric_data(Namespace="AWS/Outposts", MetricData=batch)


def minutes(
    start: dt.datetime, values: Sequence[float | None], outpost_id: str
) -> list[tuple[str, dt.datetime, float]]:
    """One datapoint per minute from `start`; None leaves that minute without data."""
    return [
        (outpost_id, start + dt.timedelta(minutes=i), value)
        for i, value in enumerate(values)
        if value is not None
    ]


def points(start: dt.datetime, values: Sequence[float | None], period: int = 60) -> list[Datapoint]:
    """Datapoints for the service layer directly, one per `period` from `start`; None skips."""
    return [
        Datapoint(start + dt.timedelta(seconds=period * i), value, period)
        for i, value in enumerate(values)
        if value is not None
    ]


def add_samples(
    session: Session,
    outpost: Outpost,
    start: dt.datetime,
    values: Sequence[float | None],
    *,
    period: int = 60,
) -> None:
    """One sample per period from `start`; None leaves a gap (no datapoint).

    Written through the poller's own service, so hourly rollups, incidents and the Outpost's
    last_sample_at follow exactly as they would in production.
    """
    from app.services.connectivity.status import record_samples

    record_samples(session, {outpost.id: points(start, values, period)})
    session.flush()


def insert_raw_samples(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Bulk insert of sample rows without rollups or incidents (benchmark-sized seeding)."""
    if rows:
        session.execute(insert(ConnectedSample), list(rows))


def add_rollups(
    session: Session,
    outpost: Outpost,
    start_hour: dt.datetime,
    hours: Iterable[tuple[float, float] | None],
) -> None:
    """One rollup per hour from `start_hour`: (connected_seconds, known_seconds); None = no row.

    Hours that already have a rollup (made from samples by `add_samples`) are left as they are;
    the daily rollups of the days touched are brought up to date.
    """
    rows = []
    for i, pair in enumerate(hours):
        if pair is None:
            continue
        connected, known = pair
        avg = connected / known if known else None
        rows.append(
            {
                "outpost_pk": outpost.id,
                "hour": start_hour + dt.timedelta(hours=i),
                "connected_seconds": connected,
                "known_seconds": known,
                "min_value": 0.0 if connected < known else 1.0,
                "avg_value": avg,
                "samples": int(known // 60),
            }
        )
    upsert(session, HourlyRollup.__table__, rows, conflict_columns=("outpost_pk", "hour"))  # type: ignore[arg-type]
    # The daily rollups follow the hours, as when samples land.
    from app.services.connectivity.history import day_floor, update_daily_rollups

    update_daily_rollups(session, {(outpost.id, day_floor(row["hour"])) for row in rows})  # type: ignore[arg-type]
    from app.services.connectivity.status import forget_uptime

    forget_uptime(session, [outpost.id])
    session.flush()


def add_incident(
    session: Session,
    outpost: Outpost,
    started_at: dt.datetime,
    ended_at: dt.datetime | None,
    *,
    worst_value: float = 0.0,
    last_below_at: dt.datetime | None = None,
) -> Incident:
    incident = Incident(
        outpost_pk=outpost.id,
        started_at=started_at,
        ended_at=ended_at,
        worst_value=worst_value,
        last_below_at=last_below_at or ended_at or started_at,
    )
    session.add(incident)
    session.flush()
    return incident


def add_poll_run(
    session: Session,
    *,
    finished_at: dt.datetime,
    outcome: str = "ok",
    error: str | None = None,
    duration: float = 2.0,
    job: str = "connectivity",
    requests: int = 1,
    items: int = 10,
) -> PollRun:
    run = PollRun(
        job=job,
        started_at=finished_at - dt.timedelta(seconds=duration),
        finished_at=finished_at,
        outcome=outcome,
        error=error,
        requests=requests,
        items=items,
    )
    session.add(run)
    session.flush()
    return run


# ---------------------------------------------------------------- credentials and certificates


@dataclass
class TestCA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def b64(self) -> str:
        return base64.b64encode(self.pem.encode()).decode()

    def sign(self, csr_pem: str, seconds: int, now: dt.datetime | None = None) -> str:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        start = now or dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(seconds=seconds))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca() -> TestCA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TestCA(key, cert)


def make_active_credential(
    session: Session,
    cluster: Cluster,
    vault: Vault,
    *,
    username: str = "lifeline:alice",
    issued_by: str = "alice",
    issued_by_user_id: int | None = None,
    days: float = 30,
    ca: TestCA | None = None,
) -> Credential:
    """An active credential as if issued earlier (certificate from a test CA, key sealed)."""
    key = pki.generate_private_key()
    csr = pki.build_csr(key.pem, username, ("lifeline:breakglass",))
    cert_pem = (ca or make_ca()).sign(csr, int(days * 86400))
    info = pki.parse_certificate(cert_pem)
    credential = Credential(
        cluster_pk=cluster.id,
        kind="breakglass",
        username=username,
        group_name="lifeline:breakglass",
        cluster_role="cluster-admin",
        key_type="ecdsa-p256",
        custody="server",
        csr_pem=csr,
        certificate_pem=cert_pem,
        fingerprint_sha256=info.fingerprint_sha256,
        serial_hex=info.serial_hex,
        not_before=info.not_before,
        not_after=info.not_after,
        requested_lifetime_seconds=int(days * 86400),
        control_plane_ips=["127.0.1.11", "127.0.1.12"],
        status="active",
        issued_by=issued_by,
        issued_by_user_id=issued_by_user_id,
        issued_at=info.not_before,
        binding_name=f"lifeline:{username.split(':')[-1]}",
        download_count=0,
    )
    session.add(credential)
    session.flush()
    credential.encrypted_key = vault.seal(key.pem, context=key_context(credential.id))
    session.flush()
    return credential


def add_credential(
    session: Session, cluster: Cluster, kind: str, days: float, *, verified: bool = True
) -> None:
    now = dt.datetime.now(dt.UTC)
    session.add(
        Credential(
            cluster_pk=cluster.id,
            kind=kind,
            username=f"{kind}-user",
            group_name="eks-breakglass",
            cluster_role="cluster-admin" if kind == "breakglass" else "view",
            key_type="ecdsa-p256",
            custody="uploaded-csr",
            requested_lifetime_seconds=int(days * 86400),
            issued_by="alice",
            status="active",
            not_before=now,
            not_after=now + dt.timedelta(days=days),
            last_verified_ok=verified,
            last_verified_at=now,
        )
    )
    session.flush()


# ---------------------------------------------------------------- EKS and the Outpost's AWS side in moto


def create_eks_cluster(
    endpoint_url: str,
    name: str,
    region: str = "us-west-2",
    *,
    ca_data: str,
    outpost_id: str | None = None,
    instance_type: str = "m5.large",
    uid: str | None = None,
    health: list[dict[str, Any]] | None = None,
    api_endpoint: str | None = None,
) -> None:
    """An EKS cluster in moto; with `outpost_id` a local cluster.

    moto drops outpostConfig, id and health and returns a random CA, so those are set on the
    backend object (moto's server runs in this process).
    """
    from moto.eks.models import eks_backends

    client = boto3.client("eks", region_name=region, endpoint_url=endpoint_url)
    client.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )
    backend = eks_backends[ACCOUNT][region].clusters[name]
    if api_endpoint is not None:
        backend.endpoint = api_endpoint
    backend.certificate_authority = {"data": ca_data}
    if outpost_id is not None:
        backend.outpost_config = {
            "outpostArns": [f"arn:aws:outposts:{region}:{ACCOUNT}:outpost/{outpost_id}"],
            "controlPlaneInstanceType": instance_type,
        }
        backend.id = uid or f"{name}-0000-4000-8000-000000000000"[:36]
        backend.health = {"issues": health or []}


def aws_side(endpoint: str, sim: Any, *, alarm: bool = True, slots: int = 1) -> None:
    """What AWS says about the simulated cluster: the local cluster, a control-plane ENI, the
    ConnectedStatus alarm (with `alarm`) and `slots` free control-plane slots."""
    create_eks_cluster(
        endpoint,
        sim.name,
        REGION,
        ca_data=sim.ca_data,
        outpost_id=OUTPOST,
        instance_type="m5.xlarge",
        uid=sim.cluster_uid,
        api_endpoint=sim.url,
    )
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.0.0.0/24")["Subnet"]["SubnetId"]
    ec2.create_network_interface(
        SubnetId=subnet, PrivateIpAddress="127.0.0.1", Description=f"Amazon EKS {sim.name}"
    )
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    if alarm:
        cloudwatch.put_metric_alarm(
            AlarmName=f"{OUTPOST}-connected",
            Namespace="AWS/Outposts",
            MetricName="ConnectedStatus",
            Dimensions=[{"Name": "OutpostId", "Value": OUTPOST}],
            Statistic="Average",
            Period=60,
            EvaluationPeriods=3,
            DatapointsToAlarm=3,
            Threshold=1,
            ComparisonOperator="LessThanThreshold",
            TreatMissingData="breaching",
            AlarmActions=[f"arn:aws:sns:{REGION}:{ACCOUNT}:oncall"],
        )
    cloudwatch.put_metric_data(
        Namespace="AWS/Outposts",
        MetricData=[
            {
                "MetricName": "AvailableInstanceType_Count",
                "Dimensions": [
                    {"Name": "OutpostId", "Value": OUTPOST},
                    {"Name": "InstanceType", "Value": "m5.xlarge"},
                ],
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
                "Value": slots,
            }
        ],
    )


# ---------------------------------------------------------------- Kubernetes: CSRs, kubeconfigs, a small dump


def _reported_node(name: str, ip: str, instance_type: str = "m5.large", ready: bool = True) -> dict[str, Any]:
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


def _running_pod(
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
    _reported_node("ip-10-0-1-10.ec2.internal", "127.0.1.10"),
    _reported_node("ip-10-0-1-11.ec2.internal", "127.0.1.11", "c5.xlarge"),
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    _running_pod(
        "shop",
        "web-1",
        "111122223333.dkr.ecr.us-west-2.amazonaws.com/web:1.4",
        {"app": "web", "tier": "front"},
    ),
    _running_pod(
        "shop",
        "web-2",
        "111122223333.dkr.ecr.us-west-2.amazonaws.com/web:1.4",
        {"app": "web", "tier": "front"},
    ),
    _running_pod("shop", "db-0", "postgres:16", {"app": "db"}),
    _running_pod("kube-system", "coredns-1", "coredns:1.11", {"k8s-app": "kube-dns"}),
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


# ---------------------------------------------------------------- readiness: a ready cluster and its failures


LOCAL_REGISTRY = "registry.local:5000"
ECR_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop/api:2.0"
Obj = dict[str, Any]


def node(name: str, *, cpu: str = "1930m", memory: str = "7Gi", images: list[str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"node.kubernetes.io/instance-type": "m5.large", "kubernetes.io/hostname": name},
        },
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "29"},
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
            "images": [{"names": [image], "sizeBytes": 1000} for image in images or []],
        },
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def container(name: str, image: str, cpu: str = "100m", memory: str = "128Mi", **extra: Any) -> Obj:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
        **extra,
    }


TUNED_TOLERATION = [
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 60,
    }
]


def workload(
    kind: str,
    name: str,
    ns: str,
    containers: list[Obj],
    *,
    replicas: int = 1,
    labels: dict[str, str] | None = None,
    tolerations: list[Obj] | None = None,
    service_account: str | None = None,
    volumes: list[Obj] | None = None,
    **spec_extra: Any,
) -> Obj:
    labels = labels or {"app": name}
    pod_spec: Obj = {
        "containers": containers,
        "tolerations": TUNED_TOLERATION if tolerations is None else tolerations,
    }
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if volumes:
        pod_spec["volumes"] = volumes
    spec: Obj = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        **spec_extra,
    }
    if kind in ("Deployment", "StatefulSet"):
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def local(image: str) -> str:
    return f"{LOCAL_REGISTRY}/{image}"


def ready_cluster() -> list[Obj]:
    """A cluster ready for a disconnect as far as manifests can show."""
    nodes = [node(f"node-{i}") for i in range(1, 4)]
    aws_node = workload(
        "DaemonSet",
        "aws-node",
        "kube-system",
        [
            container(
                "aws-node",
                local("amazon-k8s-cni:v1.18.0"),
                cpu="25m",
                env=[{"name": "WARM_IP_TARGET", "value": "5"}, {"name": "MINIMUM_IP_TARGET", "value": "15"}],
            )
        ],
        labels={"k8s-app": "aws-node"},
    )
    return [
        *nodes,
        namespace("shop"),
        namespace("monitoring"),
        aws_node,
        workload(
            "Deployment",
            "web",
            "shop",
            [container("web", local("shop/web:1.2"), "250m", "256Mi")],
            replicas=3,
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "annotations": {"alb.ingress.kubernetes.io/target-type": "instance"},
            },
            "spec": {
                "ingressClassName": "alb",
                "rules": [
                    {
                        "host": "shop.example.internal",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 4,
                "maxReplicas": 8,
            },
        },
        workload(
            "Deployment",
            "prometheus",
            "monitoring",
            [container("prometheus", local("prom/prometheus:v2.54"))],
        ),
        workload(
            "Deployment", "grafana", "monitoring", [container("grafana", local("grafana/grafana:11.2"))]
        ),
        workload(
            "DaemonSet",
            "fluent-bit",
            "monitoring",
            [container("fluent-bit", local("fluent/fluent-bit:3.1"))],
            volumes=[{"name": "config", "configMap": {"name": "fluent-bit"}}],
        ),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "fluent-bit", "namespace": "monitoring"},
            "data": {"fluent-bit.conf": "[OUTPUT]\n    Name  loki\n    Match *\n    Host  loki.monitoring\n"},
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "gp2",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "ebs.csi.aws.com",
            "parameters": {"type": "gp2"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "lifeline-breakglass"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eks-breakglass"}
            ],
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"}},
    ]


def _find(objects: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def certificate_request(name: str, common_name: str, organisation: str | None, *, issued: bool = True) -> Obj:
    """A CertificateSigningRequest as `kubectl get csr -o yaml` prints it (EC key: fast to make)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    csr = (
        x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes)).sign(key, hashes.SHA256())
    )
    status: Obj = {"conditions": [{"type": "Approved", "status": "True"}]} if issued else {}
    if issued:
        status["certificate"] = base64.b64encode(b"issued").decode()
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
        },
        "status": status,
    }


def _masters(objects: list[Obj]) -> None:
    objects.append(certificate_request("ops-admin", "ops-admin", "system:masters"))


def _no_spare(objects: list[Obj]) -> None:
    objects.append(
        workload("Deployment", "batch", "shop", [container("batch", local("shop/batch:1"), "1")], replicas=4)
    )


def _ecr(objects: list[Obj]) -> None:
    objects.append(workload("Deployment", "api", "shop", [container("api", ECR_IMAGE)], replicas=2))


def _ebs(objects: list[Obj]) -> None:
    objects.append(
        workload(
            "StatefulSet",
            "db",
            "shop",
            [container("db", local("postgres:16"))],
            volumeClaimTemplates=[
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        )
    )


def _snapshots(objects: list[Obj]) -> None:
    objects.append(
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": "ebs-snapshots"},
            "driver": "ebs.csi.aws.com",
            "deletionPolicy": "Delete",
        }
    )


def _acm(objects: list[Obj]) -> None:
    ingress = _find(objects, "Ingress", "web")
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/certificate-arn"] = (
        "arn:aws:acm:us-west-2:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    )
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTPS":443}]'


def _ip_targets(objects: list[Obj]) -> None:
    _find(objects, "Ingress", "web")["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] = (
        "ip"
    )
    _find(objects, "Namespace", "shop")["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] = (
        "enabled"
    )


def _cold_cni(objects: list[Obj]) -> None:
    env = _find(objects, "DaemonSet", "aws-node")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [{"name": "WARM_IP_TARGET", "value": "1"}]
    for index in range(10):
        objects.append(
            pod(
                f"web-7f9c-{index}", "shop", "node-1", local("shop/web:1.2"), owner=("ReplicaSet", "web-7f9c")
            )
        )


def _no_observability(objects: list[Obj]) -> None:
    objects[:] = [o for o in objects if o["metadata"]["name"] not in ("prometheus", "grafana", "fluent-bit")]


def _irsa(objects: list[Obj]) -> None:
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "uploader",
                "namespace": "shop",
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/uploader"},
            },
        }
    )
    objects.append(
        workload(
            "Deployment",
            "uploader",
            "shop",
            [container("up", local("shop/up:1"))],
            service_account="uploader",
        )
    )


def _default_toleration(objects: list[Obj]) -> None:
    objects.append(
        workload("Deployment", "cart", "shop", [container("cart", local("shop/cart:1"))], tolerations=[])
    )


def pod(
    name: str,
    ns: str,
    node_name: str | None,
    image: str,
    *,
    owner: tuple[str, str] | None = None,
    cpu: str = "100m",
    memory: str = "128Mi",
    labels: dict[str, str] | None = None,
) -> Obj:
    metadata: Obj = {"name": name, "namespace": ns, "labels": labels or {"app": name.split("-")[0]}}
    if owner:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": f"uid-{owner[1]}",
                "controller": True,
            }
        ]
        metadata["labels"]["pod-template-hash"] = owner[1].rsplit("-", 1)[-1]
    spec: Obj = {"containers": [container("main", image, cpu, memory)], "tolerations": TUNED_TOLERATION}
    if node_name:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Running"},
    }


# check_id -> (mutation, the status it must produce)
FAILING: dict[str, tuple[Callable[[list[Obj]], None], str]] = {
    "system-masters-binding": (_masters, "fail"),
    "spare-capacity": (_no_spare, "fail"),
    "image-sources": (_ecr, "fail"),
    "ebs-workloads": (_ebs, "fail"),
    "ebs-snapshots": (_snapshots, "warn"),
    "alb-acm-certificates": (_acm, "warn"),
    "lb-controller-new-pods": (_ip_targets, "fail"),
    "vpc-cni-warm-ips": (_cold_cni, "fail"),
    "local-observability": (_no_observability, "fail"),
    "iam-dependent-workloads": (_irsa, "fail"),
    "unreachable-toleration": (_default_toleration, "warn"),
}

MANIFEST_CHECKS = tuple(FAILING)
# Checks that need AWS, Lifeline's records or a person: `unknown` from a manifest dump.
UNKNOWN_FROM_MANIFESTS = (
    "breakglass-credential",
    "fallback-identity",
    "endpoint-dns",
    "connected-status-alarm",
    "cluster-health",
    "control-plane-capacity",
)


def failing_cluster(check_id: str) -> list[Obj]:
    objects = copy.deepcopy(ready_cluster())
    FAILING[check_id][0](objects)
    return objects


def start_drill_now(session: Session, outpost: Outpost, title: str = "service link drill") -> Any:
    """A drill planned and started now on `outpost` through the lifecycle (events written)."""
    from app.models.base import utcnow
    from app.services.audit import Actor
    from app.services.drills import lifecycle

    actor = Actor(name="ada", role="admin")
    drill = lifecycle.plan_drill(
        session,
        outpost_id=outpost.outpost_id,
        title=title,
        planned_start=None,
        duration_minutes=30,
        actor=actor,
        now=utcnow(),
    )
    lifecycle.start_drill(session, drill, actor, utcnow())
    return drill
