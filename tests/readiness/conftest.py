"""Fixtures for readiness polling: a simulated cluster registered in the fleet, with its AWS side
(DescribeCluster, control-plane ENIs, a ConnectedStatus alarm, free slots) in moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy.orm import Session

from app.models import Cluster, Credential, Outpost
from app.settings import Settings
from tests.conftest import make_settings
from tests.readiness.factories import LOCAL_REGISTRY

ACCOUNT = "123456789012"
REGION = "us-west-2"
OUTPOST = "op-0123456789abcdef0"


@dataclass
class PolledCluster:
    sim: Any
    cluster: Cluster
    settings: Settings


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


def aws_side(endpoint: str, sim: Any, *, alarm: bool = True, slots: int = 1) -> None:
    """What AWS says about the simulated cluster (moto drops outpostConfig/id/health: set them)."""
    from moto.eks.models import eks_backends

    eks = boto3.client("eks", region_name=REGION, endpoint_url=endpoint)
    eks.create_cluster(
        name=sim.name,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )
    backend = eks_backends[ACCOUNT][REGION].clusters[sim.name]
    backend.endpoint = sim.url
    backend.certificate_authority = {"data": sim.ca_data}
    backend.outpost_config = {
        "outpostArns": [f"arn:aws:outposts:{REGION}:{ACCOUNT}:outpost/{OUTPOST}"],
        "controlPlaneInstanceType": "m5.xlarge",
    }
    backend.id = sim.cluster_uid
    backend.health = {"issues": []}
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


@pytest.fixture
def polled_cluster(
    simulated_cluster: Callable[..., Any], aws_endpoint: str, session: Session, database_url: str
) -> Callable[..., PolledCluster]:
    """Factory: a simulated cluster with `manifests`, registered in the fleet, its AWS side in moto."""

    def make(
        manifests: list[dict[str, Any]],
        *,
        name: str = "plant7-local",
        credentials: bool = True,
        alarm: bool = True,
        slots: int = 1,
        kubeconfig_dir: Path | None = None,
        **overrides: Any,
    ) -> PolledCluster:
        sim = simulated_cluster(name=name, manifests=manifests)
        aws_side(aws_endpoint, sim, alarm=alarm, slots=slots)
        outpost = session.query(Outpost).filter_by(outpost_id=OUTPOST).one_or_none()
        if outpost is None:
            outpost = Outpost(outpost_id=OUTPOST, name="Plant 7", region=REGION)
            session.add(outpost)
            session.flush()
        cluster = Cluster(
            name=name,
            region=REGION,
            outpost_pk=outpost.id,
            cluster_uid=sim.cluster_uid,
            endpoint=sim.url,
            certificate_authority=sim.ca_data,
            status="ACTIVE",
        )
        session.add(cluster)
        session.flush()
        if credentials:
            add_credential(session, cluster, "breakglass", 30)
            add_credential(session, cluster, "fallback", 30)
        settings = make_settings(
            database_url,
            aws_endpoint_url=aws_endpoint,
            aws_regions=[REGION],
            aws_max_attempts=1,
            readiness_local_registries=[LOCAL_REGISTRY],
            readiness_kube_timeout_seconds=5,
            readiness_x509_kubeconfig_dir=kubeconfig_dir,
            **overrides,
        )
        return PolledCluster(sim, cluster, settings)

    return make
