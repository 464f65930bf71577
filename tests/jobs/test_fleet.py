"""EKS discovery against moto's server: local and cloud clusters, two regions, a failing region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.aws import AwsClients
from app.integrations.eks import EksClient
from app.jobs import fleet as discovery_job
from app.models import Cluster, Outpost, PollRun
from app.services.fleet import inventory
from app.settings import Settings
from tests.conftest import free_port, make_settings
from tests.factories import ACCOUNT
from tests.fixtures.fleet import MakeCluster

OP_A = "op-0123456789abcdef0"
OP_B = "op-0fedcba9876543210"


def _settings(database_url: str, endpoint: str, **overrides: Any) -> Settings:
    return make_settings(database_url, aws_endpoint_url=endpoint, aws_max_attempts=1, **overrides)


def _runs(session: Session, job: str = "discovery") -> dict[str, PollRun]:
    return {
        r.scope: r for r in session.scalars(select(PollRun).where(PollRun.job == job).order_by(PollRun.id))
    }


def test_adapter_returns_local_cluster_facts(
    aws_endpoint: str, make_eks_cluster: MakeCluster, ca_data: str
) -> None:
    health = [{"code": "ResourceLimitExceeded", "message": "not enough capacity", "resourceIds": ["i-1"]}]
    make_eks_cluster(
        "plant7-local", outpost_id=OP_A, uid="0c3b2a2e-1111-4c1d-9b8e-0123456789ab", health=health
    )
    make_eks_cluster("cloud-one")
    settings = _settings("sqlite://", aws_endpoint)
    listing = EksClient(AwsClients.from_settings(settings), "us-west-2").list_clusters()
    by_name = {c.name: c for c in listing.clusters}
    local = by_name["plant7-local"]
    assert local.is_local and local.outpost_id == OP_A and local.outpost_account_id == ACCOUNT
    assert local.cluster_uid == "0c3b2a2e-1111-4c1d-9b8e-0123456789ab"
    assert local.certificate_authority == ca_data
    assert local.control_plane_instance_type == "m5.large"
    assert local.status == "ACTIVE" and local.endpoint and local.endpoint.startswith("https://")
    assert [(i.code, i.resource_ids) for i in local.health_issues] == [("ResourceLimitExceeded", ("i-1",))]
    assert not by_name["cloud-one"].is_local
    # One ListClusters page plus one DescribeCluster per cluster.
    assert listing.requests == 3


def test_discovery_in_two_regions(
    aws_endpoint: str,
    make_eks_cluster: MakeCluster,
    session_factory: sessionmaker[Session],
    database_url: str,
) -> None:
    make_eks_cluster("plant7-local", "us-west-2", outpost_id=OP_A)
    make_eks_cluster("cloud-one", "us-west-2")
    make_eks_cluster("plant9-local", "eu-central-1", outpost_id=OP_B)
    settings = _settings(database_url, aws_endpoint, aws_regions=["us-west-2", "eu-central-1"])

    report = discovery_job.run_once(settings, session_factory)
    assert report.regions == {"us-west-2": None, "eu-central-1": None}

    with session_factory() as session:
        outposts = {o.outpost_id: o for o in session.scalars(select(Outpost))}
        assert {k: (o.region, o.account_id, o.source) for k, o in outposts.items()} == {
            OP_A: ("us-west-2", ACCOUNT, "discovery"),
            OP_B: ("eu-central-1", ACCOUNT, "discovery"),
        }
        clusters = {c.name: c for c in session.scalars(select(Cluster))}
        # A cluster without outpostConfig is a cloud cluster: not part of the fleet.
        assert set(clusters) == {"plant7-local", "plant9-local"}
        local = clusters["plant7-local"]
        assert local.outpost is outposts[OP_A] and local.source == "discovery"
        assert (
            local.status == "ACTIVE" and local.cluster_uid and local.endpoint and local.certificate_authority
        )
        assert local.control_plane_instance_type == "m5.large" and local.described_at is not None
        runs = _runs(session)
        assert {scope: (r.outcome, r.items) for scope, r in runs.items()} == {
            "us-west-2": ("ok", 2),
            "eu-central-1": ("ok", 1),
        }
        assert runs["us-west-2"].requests == 3 and runs["us-west-2"].finished_at is not None

    # Running again changes nothing.
    again = discovery_job.run_once(settings, session_factory)
    assert again.changes.modified is False


def test_one_failing_region_is_recorded_and_the_other_still_applied(
    aws_endpoint: str,
    make_eks_cluster: MakeCluster,
    session_factory: sessionmaker[Session],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.eks.models import eks_backends

    make_eks_cluster("plant7-local", "us-west-2", outpost_id=OP_A)
    make_eks_cluster("plant9-local", "eu-central-1", outpost_id=OP_B)

    class AccessDenied(JsonRESTError):
        code = 403

    def deny(*_: Any, **__: Any) -> Any:
        raise AccessDenied(
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/lifeline is not authorized to perform: eks:ListClusters "
            "with an explicit deny in a service control policy",
        )

    # An SCP that denies one region: the server answers 403 AccessDeniedException for it only.
    monkeypatch.setattr(eks_backends[ACCOUNT]["eu-central-1"], "list_clusters", deny)
    settings = _settings(database_url, aws_endpoint, aws_regions=["eu-central-1", "us-west-2"])

    with pytest.raises(discovery_job.DiscoveryFailedError, match="eu-central-1: AccessDeniedException"):
        discovery_job.run_once(settings, session_factory)

    with session_factory() as session:
        runs = _runs(session)
        assert runs["eu-central-1"].outcome == "error"
        assert runs["eu-central-1"].error is not None
        assert runs["eu-central-1"].error.startswith("AccessDeniedException: User: arn:aws:iam::")
        assert runs["us-west-2"].outcome == "ok"
        assert inventory.get_cluster_or_none(session, "plant7-local", "us-west-2") is not None
        assert inventory.get_cluster_or_none(session, "plant9-local", "eu-central-1") is None


def test_cached_facts_survive_when_aws_is_unreachable(
    aws_endpoint: str,
    make_eks_cluster: MakeCluster,
    session_factory: sessionmaker[Session],
    database_url: str,
) -> None:
    make_eks_cluster("plant7-local", outpost_id=OP_A)
    discovery_job.run_once(_settings(database_url, aws_endpoint, aws_regions=["us-west-2"]), session_factory)

    unreachable = _settings(
        database_url,
        f"http://127.0.0.1:{free_port()}",
        aws_regions=["us-west-2"],
        aws_connect_timeout_seconds=0.5,
    )
    report = discovery_job.poll_discovery(unreachable, session_factory)
    assert (
        report.regions["us-west-2"] is not None and "EndpointConnectionError" in report.regions["us-west-2"]
    )

    with session_factory() as session:
        cluster = inventory.get_cluster_or_none(session, "plant7-local", "us-west-2")
        assert cluster is not None and cluster.endpoint and cluster.certificate_authority
        assert cluster.status == "ACTIVE"
        latest = session.scalars(select(PollRun).order_by(PollRun.id.desc())).first()
        assert latest is not None and latest.outcome == "error"


def test_discovery_respects_precedence_and_removes_vanished_clusters(
    aws_endpoint: str,
    make_eks_cluster: MakeCluster,
    session_factory: sessionmaker[Session],
    database_url: str,
) -> None:
    from moto.eks.models import eks_backends

    make_eks_cluster("plant7-local", outpost_id=OP_A)
    make_eks_cluster("plant8-local", outpost_id=OP_A)
    with session_factory() as session:
        inventory.add_outpost(session, outpost_id=OP_A, name="Plant 7 (by hand)", region="us-west-2")
        inventory.add_cluster(session, name="plant7-local", region="us-west-2")
        inventory.add_cluster(session, name="gone-local", region="us-west-2")
        session.commit()
    settings = _settings(database_url, aws_endpoint, aws_regions=["us-west-2"])
    discovery_job.run_once(settings, session_factory)

    with session_factory() as session:
        outpost = inventory.get_outpost_or_none(session, OP_A)
        assert outpost is not None
        # Discovery never renames a manual Outpost, but fills in the account from the ARN.
        assert (outpost.name, outpost.source, outpost.account_id) == ("Plant 7 (by hand)", "manual", ACCOUNT)
        manual = inventory.get_cluster_or_none(session, "plant7-local", "us-west-2")
        assert manual is not None and manual.source == "manual" and manual.endpoint is not None
        assert manual.outpost is outpost
        gone = inventory.get_cluster_or_none(session, "gone-local", "us-west-2")
        assert gone is not None and gone.status == "NOT_FOUND"

    # plant8 disappears from EKS: its discovery row goes; the manual ones stay.
    del eks_backends[ACCOUNT]["us-west-2"].clusters["plant8-local"]
    discovery_job.run_once(settings, session_factory)
    with session_factory() as session:
        assert inventory.get_cluster_or_none(session, "plant8-local", "us-west-2") is None
        assert inventory.get_cluster_or_none(session, "gone-local", "us-west-2") is not None
        assert inventory.get_outpost_or_none(session, OP_A) is not None


def test_job_applies_the_fleet_file_and_uses_its_regions(
    aws_endpoint: str,
    make_eks_cluster: MakeCluster,
    session_factory: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
) -> None:
    make_eks_cluster("plant9-local", "eu-central-1", outpost_id=OP_B)
    path = tmp_path / "fleet.yaml"
    path.write_text(
        f"outposts:\n  - id: {OP_A}\n    name: Plant 7\n    region: us-west-2\n"
        "discovery:\n  regions: [eu-central-1]\n"
    )
    settings = _settings(database_url, aws_endpoint, fleet_file=path)
    discovery_job.run_once(settings, session_factory)
    with session_factory() as session:
        assert {o.outpost_id: o.source for o in session.scalars(select(Outpost))} == {
            OP_A: "file",
            OP_B: "discovery",
        }
        assert _runs(session, "fleet-file")[str(path)].outcome == "ok"

    # A GitOps change with an error is rejected whole and recorded; the fleet stays as it was.
    path.write_text(f"outposts:\n  - id: {OP_A}\n    name: Renamed\n    region: nowhere\n")
    with pytest.raises(discovery_job.DiscoveryFailedError, match=r"fleet\.yaml:4: Outpost"):
        discovery_job.run_once(settings, session_factory)
    with session_factory() as session:
        kept = inventory.get_outpost_or_none(session, OP_A)
        assert kept is not None and kept.name == "Plant 7"
        run = _runs(session, "fleet-file")[str(path)]
        assert run.outcome == "error" and run.error and f"{path}:4:" in run.error

    # Fixed: the change lands on the next run, without a restart.
    path.write_text(f"outposts:\n  - id: {OP_A}\n    name: Renamed\n    region: us-west-2\n")
    discovery_job.run_once(settings, session_factory)
    with session_factory() as session:
        renamed = inventory.get_outpost_or_none(session, OP_A)
        assert renamed is not None and renamed.name == "Renamed"


def test_register_runs_at_start_and_every_interval(database_url: str) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    settings = make_settings(database_url, poll_interval_seconds=120)
    discovery_job.register(scheduler, settings, sessionmaker())
    job = scheduler.get_job("discovery")
    assert job.trigger.interval.total_seconds() == 120
    assert job.next_run_time is not None
