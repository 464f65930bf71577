"""Thin adapter over boto3 EKS: list and describe clusters, returned as our own frozen dataclasses.

Only ListClusters (paginated) and DescribeCluster; botocore errors propagate as ClientError /
BotoCoreError for the caller to record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.integrations.aws import AwsClients, error_code


@dataclass(frozen=True)
class EksHealthIssue:
    code: str
    message: str
    resource_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "resource_ids": list(self.resource_ids)}


@dataclass(frozen=True)
class EksCluster:
    """What DescribeCluster says about one cluster; the Outpost fields are None for cloud clusters."""

    name: str
    region: str
    arn: str | None
    cluster_uid: str | None
    endpoint: str | None
    certificate_authority: str | None
    status: str | None
    platform_version: str | None
    kubernetes_version: str | None
    outpost_arn: str | None
    control_plane_instance_type: str | None
    health_issues: tuple[EksHealthIssue, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.outpost_arn is not None

    @property
    def outpost_id(self) -> str | None:
        """The last part of the Outpost ARN (arn:aws:outposts:REGION:ACCOUNT:outpost/op-...)."""
        return self.outpost_arn.rsplit("/", 1)[-1] if self.outpost_arn else None

    @property
    def outpost_account_id(self) -> str | None:
        if not self.outpost_arn:
            return None
        parts = self.outpost_arn.split(":")
        return parts[4] if len(parts) > 5 and parts[4].isdigit() and len(parts[4]) == 12 else None


@dataclass(frozen=True)
class EksListing:
    """Every cluster in one region, and how many API requests it took."""

    region: str
    clusters: tuple[EksCluster, ...]
    requests: int


class EksClient:
    """EKS in one region, through a client built by AwsClients (timeouts, retries, endpoint)."""

    def __init__(self, clients: AwsClients, region: str) -> None:
        self.region = region
        self._client = clients.client("eks", region)
        self.requests = 0

    def list_cluster_names(self) -> list[str]:
        names: list[str] = []
        for page in self._client.get_paginator("list_clusters").paginate():
            self.requests += 1
            names.extend(page.get("clusters", []))
        return names

    def describe_cluster(self, name: str) -> EksCluster | None:
        """The cluster, or None if it was deleted since it was listed."""
        self.requests += 1
        try:
            cluster = self._client.describe_cluster(name=name)["cluster"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return _to_cluster(cluster, self.region)

    def list_clusters(self) -> EksListing:
        clusters = [c for c in (self.describe_cluster(n) for n in self.list_cluster_names()) if c is not None]
        return EksListing(self.region, tuple(clusters), self.requests)


def _to_cluster(data: dict[str, Any], region: str) -> EksCluster:
    outpost_config = data.get("outpostConfig") or {}
    arns = outpost_config.get("outpostArns") or []
    health = (data.get("health") or {}).get("issues") or []
    return EksCluster(
        name=data["name"],
        region=region,
        arn=data.get("arn"),
        cluster_uid=data.get("id"),
        endpoint=data.get("endpoint"),
        certificate_authority=(data.get("certificateAuthority") or {}).get("data"),
        status=data.get("status"),
        platform_version=data.get("platformVersion"),
        kubernetes_version=data.get("version"),
        # "Only a single Outpost ARN is supported" (EKS API reference, OutpostConfigResponse).
        outpost_arn=arns[0] if arns else None,
        control_plane_instance_type=outpost_config.get("controlPlaneInstanceType"),
        health_issues=tuple(
            EksHealthIssue(
                code=str(issue.get("code", "Other")),
                message=str(issue.get("message", "")),
                resource_ids=tuple(issue.get("resourceIds") or ()),
            )
            for issue in health
        ),
    )
