"""Builders for connectivity tests: Outposts in the database, ConnectedStatus datapoints in moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import boto3
from sqlalchemy.orm import Session

from app.integrations.cloudwatch import Datapoint
from app.models.fleet import Outpost


def outpost_id_for(index: int) -> str:
    return f"op-{index:017x}"


def make_outposts(session: Session, count: int, region: str = "us-west-2", start: int = 1) -> list[Outpost]:
    outposts = [
        Outpost(outpost_id=outpost_id_for(start + i), name=f"Outpost {start + i}", region=region)
        for i in range(count)
    ]
    session.add_all(outposts)
    session.flush()
    return outposts


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
