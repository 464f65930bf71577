"""Fixtures for the site probes: a simulated local cluster on an Outpost in the fleet, moto for AWS,
and an x509 kubeconfig for Lifeline's own identity."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.models import Cluster, Outpost
from app.settings import Settings
from tests.conftest import make_settings

REGION = "us-west-2"
OUTPOST = "op-0123456789abcdef0"


@dataclass
class Site:
    sim: Any
    outpost: Outpost
    cluster: Cluster
    settings: Callable[..., Settings]


class FakeClock:
    """Time that moves only when the code under test sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.slept: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def probed_site(
    simulated_cluster: Callable[..., Any],
    aws_endpoint: str,
    session: Session,
    database_url: str,
    tmp_path: Path,
) -> Site:
    sim = simulated_cluster(name="plant7-local")
    kubeconfigs = tmp_path / "x509"
    sim.write_admin_kubeconfig(kubeconfigs / "plant7-local.yaml", user="lifeline-fallback", groups=("view",))
    now = dt.datetime.now(dt.UTC)
    outpost = Outpost(
        outpost_id=OUTPOST,
        name="Plant 7",
        region=REGION,
        state="CONNECTED",
        state_since=now - dt.timedelta(hours=2),
        last_sample_at=now - dt.timedelta(minutes=2),
        last_value=1.0,
    )
    session.add(outpost)
    session.flush()
    cluster = Cluster(
        name="plant7-local",
        region=REGION,
        outpost_pk=outpost.id,
        cluster_uid=sim.cluster_uid,
        endpoint=sim.url,
        certificate_authority=sim.ca_data,
        status="ACTIVE",
    )
    session.add(cluster)
    session.commit()

    def settings(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "aws_endpoint_url": aws_endpoint,
            "vantage": "plant7-datacenter",
            "readiness_x509_kubeconfig_dir": kubeconfigs,
            "probe_timeout_seconds": 2,
        }
        values.update(overrides)
        return make_settings(database_url, **values)

    return Site(sim, outpost, cluster, settings)
