"""pydantic models for forms and the JSON API, one section per feature."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.services import fleet_rules

# fleet


def _check(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


class OutpostCreate(BaseModel):
    """An Outpost added through the API (source: manual)."""

    outpost_id: str = Field(examples=["op-0123456789abcdef0"], description="op- + 17 lower-case hex digits")
    name: str = Field(examples=["Plant 7, rack A"], max_length=fleet_rules.NAME_MAX)
    region: str = Field(examples=["us-west-2"])
    account_id: str | None = Field(default=None, examples=["123456789012"], description="12 digits")

    @field_validator("outpost_id", "name", "region", "account_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("outpost_id")
    @classmethod
    def _outpost_id(cls, value: str) -> str:
        _check(fleet_rules.outpost_id_problem(value))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check(fleet_rules.name_problem(value))
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        _check(fleet_rules.region_problem(value))
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        _check(fleet_rules.account_id_problem(value))
        return value or None


class ClusterCreate(BaseModel):
    """A local cluster added through the API (source: manual)."""

    name: str = Field(examples=["plant7-local"])
    region: str = Field(examples=["us-west-2"])
    outpost_id: str | None = Field(default=None, examples=["op-0123456789abcdef0"])

    @field_validator("name", "region", "outpost_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check(fleet_rules.cluster_name_problem(value))
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        _check(fleet_rules.region_problem(value))
        return value

    @field_validator("outpost_id")
    @classmethod
    def _outpost_id(cls, value: str | None) -> str | None:
        if value:
            _check(fleet_rules.outpost_id_problem(value))
        return value or None


class FleetOutpostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    outpost_id: str
    name: str
    region: str
    account_id: str | None
    source: str = Field(description="file, manual or discovery")
    state: str
    clusters: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime


class HealthIssueOut(BaseModel):
    code: str
    message: str
    resource_ids: list[str] = []


class FleetClusterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    region: str
    outpost_id: str | None
    source: str = Field(description="file, manual or discovery")
    cluster_uid: str | None = Field(description="The local cluster's ID (DescribeCluster `id`)")
    endpoint: str | None
    status: str | None = Field(description="EKS status, or NOT_FOUND when discovery no longer sees it")
    platform_version: str | None
    kubernetes_version: str | None
    control_plane_instance_type: str | None
    health_issues: list[HealthIssueOut]
    has_certificate_authority: bool
    described_at: dt.datetime | None


class PollRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job: str
    scope: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str
    error: str | None
    requests: int
    items: int


class FleetOut(BaseModel):
    outposts: list[FleetOutpostOut]
    clusters: list[FleetClusterOut]
    discovery_regions: list[str] = Field(description="Regions discovery runs in (fleet file + settings)")
    discovery_runs: list[PollRunOut] = Field(description="The latest discovery run per region")
    fleet_file: str | None = Field(description="LIFELINE_FLEET_FILE, if set")
    fleet_file_runs: list[PollRunOut] = Field(description="The latest application of the fleet file")
