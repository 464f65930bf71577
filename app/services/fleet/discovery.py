"""Merge what EKS discovery found in one region into the fleet, and read back discovery runs.

Discovery adds local clusters and their Outposts (source: discovery) and caches DescribeCluster
facts on every cluster row it finds, whoever declared it, so they stay available while the Region
is not. It removes only discovery rows for clusters that are gone, and never deletes an Outpost
(its connectivity history is worth more than a tidy list).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.integrations.eks import EksCluster, EksListing
from app.models import Cluster, Outpost, PollRun
from app.services.audit import Actor, Via
from app.services.fleet import inventory
from app.services.fleet.fleet_file import FleetFileError, load_fleet_file
from app.services.fleet.inventory import DISCOVERY, FleetChanges

ACTOR = Actor(name="discovery", role="admin", via=Via.system)
DISCOVERY_JOB = "discovery"
FLEET_FILE_JOB = "fleet-file"
# Shown when a cluster declared by the file or by hand is not (or no longer) in EKS.
NOT_FOUND = "NOT_FOUND"


def record_discovered_clusters(session: Session, listing: EksListing, now: dt.datetime) -> FleetChanges:
    """Apply one region's ListClusters + DescribeCluster results to the fleet."""
    changes = FleetChanges()
    outposts = {o.outpost_id: o for o in session.scalars(select(Outpost))}
    clusters = {c.name: c for c in session.scalars(select(Cluster).where(Cluster.region == listing.region))}
    seen: set[str] = set()
    for found in listing.clusters:
        seen.add(found.name)
        outpost = _discovered_outpost(session, found, outposts, changes)
        cluster = clusters.get(found.name)
        label = f"{found.region}/{found.name}"
        if cluster is None:
            if not found.is_local:
                changes.add("skip", "cluster", label, "no outpostConfig: a cloud cluster, not a local one")
                continue
            cluster = Cluster(name=found.name, region=found.region, source=DISCOVERY, health_issues=[])
            session.add(cluster)
            changes.add("add", "cluster", label, f"on {found.outpost_id}")
            inventory.audit_fleet_change(session, ACTOR, "fleet.cluster.add", label, f"on {found.outpost_id}")
            _cache_facts(cluster, found)
        elif diff := _cache_facts(cluster, found):
            changes.add("update", "cluster", label, diff)
        if cluster.source == DISCOVERY or cluster.outpost is None:
            # What the file or a person declared wins; discovery only fills the gap.
            cluster.outpost = outpost
        cluster.described_at = now
    for name, cluster in clusters.items():
        if name in seen:
            continue
        label = f"{listing.region}/{name}"
        live = inventory.live_credentials(session, cluster) if cluster.source == DISCOVERY else []
        if live:
            if cluster.status != NOT_FOUND:
                cluster.status = NOT_FOUND
                changes.add(
                    "update",
                    "cluster",
                    label,
                    f"not found in EKS (kept: live credentials {inventory.describe_credentials(live)}; "
                    "revoke them before it can go)",
                )
        elif cluster.source == DISCOVERY:
            inventory.delete_cluster(session, cluster)
            changes.add("remove", "cluster", label, "no longer in EKS")
            inventory.audit_fleet_change(session, ACTOR, "fleet.cluster.remove", label, "no longer in EKS")
        elif cluster.status != NOT_FOUND:
            # Keep the cached facts (endpoint, CA): they may be all an on-call engineer has.
            cluster.status = NOT_FOUND
            changes.add("update", "cluster", label, f"not found in EKS ({cluster.source} entry kept)")
    session.flush()
    return changes


def _discovered_outpost(
    session: Session, found: EksCluster, outposts: dict[str, Outpost], changes: FleetChanges
) -> Outpost | None:
    if found.outpost_id is None:
        return None
    outpost = outposts.get(found.outpost_id)
    if outpost is None:
        outpost = Outpost(
            outpost_id=found.outpost_id,
            name=found.outpost_id,
            region=found.region,
            account_id=found.outpost_account_id,
            source=DISCOVERY,
        )
        session.add(outpost)
        outposts[found.outpost_id] = outpost
        changes.add("add", "outpost", found.outpost_id, f"from cluster {found.name}")
        inventory.audit_fleet_change(
            session, ACTOR, "fleet.outpost.add", found.outpost_id, f"from cluster {found.name}"
        )
    elif outpost.account_id is None and found.outpost_account_id:
        # A fact from the ARN, not a preference: fill it in whatever the source.
        outpost.account_id = found.outpost_account_id
        changes.add("update", "outpost", found.outpost_id, f"account: {found.outpost_account_id}")
    return outpost


def _cache_facts(cluster: Cluster, found: EksCluster) -> str:
    return inventory.assign_changed(
        cluster,
        cluster_uid=found.cluster_uid,
        endpoint=found.endpoint,
        certificate_authority=found.certificate_authority,
        status=found.status,
        platform_version=found.platform_version,
        kubernetes_version=found.kubernetes_version,
        control_plane_instance_type=found.control_plane_instance_type,
        health_issues=[issue.as_dict() for issue in found.health_issues],
        quiet={"certificate_authority"},
    )


def discovery_regions(file_regions: Iterable[str], setting_regions: Iterable[str]) -> list[str]:
    """The fleet file's `discovery.regions` plus LIFELINE_AWS_REGIONS, in order, without repeats."""
    return list(dict.fromkeys([*file_regions, *setting_regions]))


def configured_regions(
    fleet_file: Path | None, setting_regions: Iterable[str]
) -> tuple[list[str], str | None]:
    """Regions discovery will cover, and the fleet file's problem if it cannot be read."""
    file_regions: tuple[str, ...] = ()
    error = None
    if fleet_file is not None:
        try:
            file_regions = load_fleet_file(fleet_file).discovery_regions
        except FleetFileError as exc:
            error = str(exc)
    return discovery_regions(file_regions, setting_regions), error


def latest_runs(session: Session, job: str) -> list[PollRun]:
    """The most recent run of `job` for each scope (region, file), newest first."""
    latest = (
        select(PollRun.scope, func.max(PollRun.id).label("last_id"))
        .where(PollRun.job == job)
        .group_by(PollRun.scope)
    ).subquery()
    stmt = select(PollRun).join(latest, PollRun.id == latest.c.last_id).order_by(PollRun.scope)
    return list(session.scalars(stmt))
