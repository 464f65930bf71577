"""AWS reads for readiness checks: ConnectedStatus alarms, instance network limits, ACM expiries,
and free Outpost slots for an instance type. Returns our frozen dataclasses, never boto3 dicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.integrations.aws import AwsClients


@dataclass(frozen=True)
class AlarmFact:
    name: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, str]
    comparison: str
    threshold: float
    statistic: str
    period: int
    evaluation_periods: int
    treat_missing_data: str | None
    actions: tuple[str, ...]
    state: str


@dataclass(frozen=True)
class InstanceNetworkLimits:
    instance_type: str
    max_enis: int
    ipv4_per_eni: int

    @property
    def max_pods(self) -> int:
        """ENIs x (IPv4 per ENI - 1) + 2: the first IP of each ENI is the node's, +2 host-network pods."""
        return self.max_enis * (self.ipv4_per_eni - 1) + 2


@dataclass(frozen=True)
class CertificateFact:
    arn: str
    domain: str
    not_after: dt.datetime | None
    status: str


def connected_status_alarms(clients: AwsClients, region: str) -> tuple[AlarmFact, ...]:
    """Metric alarms on AWS/Outposts ConnectedStatus in `region`."""
    cloudwatch = clients.client("cloudwatch", region)
    alarms: list[AlarmFact] = []
    token = ""
    while True:
        kwargs: dict[str, object] = {"AlarmTypes": ["MetricAlarm"], "MaxRecords": 100}
        if token:
            kwargs["NextToken"] = token
        page = cloudwatch.describe_alarms(**kwargs)
        for alarm in page.get("MetricAlarms", []):
            if alarm.get("MetricName") != "ConnectedStatus":
                continue
            alarms.append(
                AlarmFact(
                    name=str(alarm.get("AlarmName", "")),
                    namespace=str(alarm.get("Namespace", "")),
                    metric_name="ConnectedStatus",
                    dimensions={str(d["Name"]): str(d["Value"]) for d in alarm.get("Dimensions", [])},
                    comparison=str(alarm.get("ComparisonOperator", "")),
                    threshold=float(alarm.get("Threshold", 0.0)),
                    statistic=str(alarm.get("Statistic", "")),
                    period=int(alarm.get("Period", 0)),
                    evaluation_periods=int(alarm.get("EvaluationPeriods", 0)),
                    treat_missing_data=alarm.get("TreatMissingData"),
                    actions=tuple(alarm.get("AlarmActions", [])) if alarm.get("ActionsEnabled", True) else (),
                    state=str(alarm.get("StateValue", "")),
                )
            )
        token = page.get("NextToken") or ""
        if not token:
            return tuple(alarms)


def instance_network_limits(
    clients: AwsClients, region: str, instance_types: Iterable[str]
) -> dict[str, InstanceNetworkLimits]:
    """ENIs and IPv4 addresses per ENI (network card 0, as eni-max-pods.txt uses) per type."""
    wanted = sorted({t for t in instance_types if t})
    if not wanted:
        return {}
    ec2 = clients.client("ec2", region)
    result: dict[str, InstanceNetworkLimits] = {}
    for start in range(0, len(wanted), 100):
        page = ec2.describe_instance_types(InstanceTypes=wanted[start : start + 100])
        for item in page.get("InstanceTypes", []):
            network = item.get("NetworkInfo", {})
            cards = network.get("NetworkCards") or []
            enis = int(cards[0].get("MaximumNetworkInterfaces", 0)) if cards else 0
            enis = enis or int(network.get("MaximumNetworkInterfaces", 0))
            name = str(item["InstanceType"])
            result[name] = InstanceNetworkLimits(name, enis, int(network.get("Ipv4AddressesPerInterface", 0)))
    return result


def certificates(clients: AwsClients, region: str, arns: Iterable[str]) -> dict[str, CertificateFact]:
    """ACM certificates by ARN (those in other regions are read in their own region)."""
    result: dict[str, CertificateFact] = {}
    by_region: dict[str, list[str]] = {}
    for arn in sorted(set(arns)):
        parts = arn.split(":")
        by_region.setdefault(parts[3] if len(parts) > 3 and parts[3] else region, []).append(arn)
    for cert_region, items in by_region.items():
        acm = clients.client("acm", cert_region)
        for arn in items:
            detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            result[arn] = CertificateFact(
                arn=arn,
                domain=str(detail.get("DomainName", "")),
                not_after=detail.get("NotAfter"),
                status=str(detail.get("Status", "")),
            )
    return result


def available_instance_slots(
    clients: AwsClients, region: str, outpost_id: str, instance_type: str, now: dt.datetime
) -> int | None:
    """The latest AvailableInstanceType_Count for the type on the Outpost (None: no datapoint)."""
    cloudwatch = clients.client("cloudwatch", region)
    response = cloudwatch.get_metric_statistics(
        Namespace="AWS/Outposts",
        MetricName="AvailableInstanceType_Count",
        Dimensions=[
            {"Name": "OutpostId", "Value": outpost_id},
            {"Name": "InstanceType", "Value": instance_type},
        ],
        StartTime=now - dt.timedelta(hours=3),
        EndTime=now,
        Period=300,
        Statistics=["Minimum"],
    )
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return int(points[-1]["Minimum"]) if points else None
