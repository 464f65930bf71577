"""The fleet: add, change and remove Outposts and clusters, and apply the fleet file.

Each row remembers where it came from (`source`): the fleet file, a person (UI/API/CLI: "manual")
or EKS discovery. Precedence: manual > file > discovery. The file never touches manual rows, and
takes over discovered ones; discovery never deletes or renames what a person or the file declared.
Services flush, never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import Cluster, Credential, Outpost
from app.services.audit import SYSTEM, Actor, Via, record_audit
from app.services.errors import Conflict, InvalidInput, NotFound, ServiceError
from app.services.fleet import rules
from app.services.fleet.fleet_file import FleetFile, FleetFileError, FleetFileProblem

log = logging.getLogger(__name__)

FLEET_FILE_ACTOR = Actor(name="fleet-file", role="admin", via=Via.system)
"""Who the trail names for changes the fleet-file job applies."""

FILE = "file"
MANUAL = "manual"
DISCOVERY = "discovery"


class FleetError(ServiceError):
    """A fleet change was refused; the message says why."""


class FleetValidationError(FleetError, InvalidInput):
    """One or more fields are invalid; `errors` maps each field name to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        InvalidInput.__init__(self, errors=errors)


class FleetNotFoundError(FleetError, NotFound):
    """The Outpost or cluster does not exist."""


class FleetConflictError(FleetError, Conflict):
    """The change clashes with what exists (a duplicate, or an entry the fleet file owns)."""


@dataclass(frozen=True)
class FleetChange:
    action: str  # add, update, remove, skip
    kind: str  # outpost, cluster
    key: str  # op-... or region/name
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.action:<6} {self.kind:<7} {self.key}"
        return f"{text}  ({self.detail})" if self.detail else text


@dataclass
class FleetChanges:
    changes: list[FleetChange] = field(default_factory=list)

    def add(self, action: str, kind: str, key: str, detail: str = "") -> None:
        self.changes.append(FleetChange(action, kind, key, detail))

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def modified(self) -> bool:
        return any(change.action != "skip" for change in self.changes)

    def summary(self) -> str:
        return (
            f"{self.count('add')} added, {self.count('update')} updated, "
            f"{self.count('remove')} removed, {self.count('skip')} skipped"
        )


def audit_fleet_change(session: Session, actor: Actor, action: str, target: str, detail: str = "") -> None:
    """The single call point auditing fleet changes: `fleet.outpost.add` on `outpost:op-...`."""
    kind = action.split(".")[1] if action.count(".") >= 2 else "fleet"
    log.info("%s %s by %s %s", action, target, actor.name, detail)
    record_audit(
        session,
        actor=actor,
        action=action,
        target=f"{kind}:{target}",
        details={"change": detail} if detail else None,
    )


# ---------------------------------------------------------------- queries


def list_outposts(session: Session) -> list[Outpost]:
    stmt = select(Outpost).options(selectinload(Outpost.clusters)).order_by(Outpost.region, Outpost.name)
    return list(session.scalars(stmt))


def list_clusters(session: Session) -> list[Cluster]:
    stmt = select(Cluster).options(selectinload(Cluster.outpost)).order_by(Cluster.region, Cluster.name)
    return list(session.scalars(stmt))


def get_outpost_or_none(session: Session, outpost_id: str, *, with_clusters: bool = False) -> Outpost | None:
    """`with_clusters`: its clusters in the same round trip (the Outpost page lists them)."""
    stmt = select(Outpost).where(Outpost.outpost_id == outpost_id)
    if with_clusters:
        stmt = stmt.options(joinedload(Outpost.clusters))
    return session.execute(stmt).unique().scalar_one_or_none()


def get_cluster_or_none(session: Session, name: str, region: str) -> Cluster | None:
    return session.scalar(select(Cluster).where(Cluster.name == name, Cluster.region == region))


# ---------------------------------------------------------------- validation


def validate_outpost(outpost_id: str, name: str, region: str, account_id: str | None) -> None:
    """Raise FleetValidationError naming every bad field."""
    problems = {
        "outpost_id": rules.outpost_id_problem(outpost_id),
        "name": rules.name_problem(name),
        "region": rules.region_problem(region),
        "account_id": rules.account_id_problem(account_id),
    }
    errors = {key: value for key, value in problems.items() if value}
    if errors:
        raise FleetValidationError(errors)


def validate_cluster(name: str, region: str, outpost_id: str | None) -> None:
    problems = {
        "name": rules.cluster_name_problem(name),
        "region": rules.region_problem(region),
        "outpost_id": rules.outpost_id_problem(outpost_id) if outpost_id else None,
    }
    errors = {key: value for key, value in problems.items() if value}
    if errors:
        raise FleetValidationError(errors)


# ---------------------------------------------------------------- Outposts


def add_outpost(
    session: Session,
    *,
    outpost_id: str,
    name: str,
    region: str,
    account_id: str | None = None,
    actor: Actor = SYSTEM,
) -> Outpost:
    """Add an Outpost by hand; a discovered one with the same ID is taken over (source: manual)."""
    outpost_id, name, region = outpost_id.strip(), name.strip(), region.strip()
    account_id = (account_id or "").strip() or None
    validate_outpost(outpost_id, name, region, account_id)
    existing = get_outpost_or_none(session, outpost_id)
    if existing is not None and existing.source != DISCOVERY:
        raise FleetConflictError(f"Outpost {outpost_id} already exists (source: {existing.source})")
    if existing is not None:
        if existing.region != region:
            raise FleetValidationError(
                {"region": f"discovery found {outpost_id} in {existing.region}, not {region}"}
            )
        existing.name, existing.source = name, MANUAL
        existing.account_id = account_id or existing.account_id
        outpost = existing
    else:
        outpost = Outpost(
            outpost_id=outpost_id, name=name, region=region, account_id=account_id, source=MANUAL
        )
        session.add(outpost)
    session.flush()
    audit_fleet_change(session, actor, "fleet.outpost.add", outpost_id, f"{name} in {region}")
    return outpost


def update_outpost(
    session: Session,
    outpost_id: str,
    *,
    name: str | None = None,
    account_id: str | None = None,
    actor: Actor = SYSTEM,
) -> Outpost:
    """Rename an Outpost or set its account (not for file-managed ones: edit the file)."""
    outpost = _editable_outpost(session, outpost_id)
    new_name = outpost.name if name is None else name.strip()
    new_account = outpost.account_id if account_id is None else (account_id.strip() or None)
    validate_outpost(outpost.outpost_id, new_name, outpost.region, new_account)
    outpost.name, outpost.account_id = new_name, new_account
    session.flush()
    audit_fleet_change(session, actor, "fleet.outpost.update", outpost_id, new_name)
    return outpost


def remove_outpost(
    session: Session, outpost_id: str, *, actor: Actor = SYSTEM, include_file: bool = False
) -> None:
    """Remove an Outpost and its connectivity history; its clusters stay, unlinked.

    `include_file` also removes a file-managed one (for a fleet file no longer in use; while the
    file still lists it, the next sync adds it again).
    """
    outpost = _editable_outpost(session, outpost_id, include_file=include_file)
    for cluster in outpost.clusters:
        cluster.outpost = None
    session.delete(outpost)
    session.flush()
    detail = "discovery adds it again while a cluster on it exists" if outpost.source == DISCOVERY else ""
    audit_fleet_change(session, actor, "fleet.outpost.remove", outpost_id, detail)


def _editable_outpost(session: Session, outpost_id: str, *, include_file: bool = False) -> Outpost:
    outpost = get_outpost_or_none(session, outpost_id.strip())
    if outpost is None:
        raise FleetNotFoundError(f"no Outpost {outpost_id}")
    if outpost.source == FILE and not include_file:
        raise FleetConflictError(
            f"Outpost {outpost_id} is managed by the fleet file; change or remove it there "
            "(or, for a fleet file no longer in use, `lifeline fleet remove-outpost --force`)"
        )
    return outpost


# ---------------------------------------------------------------- clusters


def add_cluster(
    session: Session,
    *,
    name: str,
    region: str,
    outpost_id: str | None = None,
    actor: Actor = SYSTEM,
) -> Cluster:
    """Add a cluster by hand, optionally on a known Outpost; a discovered one is taken over."""
    name, region = name.strip(), region.strip()
    outpost_id = (outpost_id or "").strip() or None
    validate_cluster(name, region, outpost_id)
    outpost = _cluster_outpost(session, region, outpost_id)
    existing = get_cluster_or_none(session, name, region)
    if existing is not None and existing.source != DISCOVERY:
        raise FleetConflictError(f"cluster {name} in {region} already exists (source: {existing.source})")
    if existing is not None:
        existing.source = MANUAL
        existing.outpost = outpost or existing.outpost
        cluster = existing
    else:
        cluster = Cluster(name=name, region=region, source=MANUAL, outpost=outpost, health_issues=[])
        session.add(cluster)
    session.flush()
    audit_fleet_change(session, actor, "fleet.cluster.add", f"{region}/{name}", outpost_id or "")
    return cluster


def remove_cluster(
    session: Session, name: str, region: str, *, actor: Actor = SYSTEM, include_file: bool = False
) -> None:
    cluster = get_cluster_or_none(session, name.strip(), region.strip())
    if cluster is None:
        raise FleetNotFoundError(f"no cluster {name} in {region}")
    if cluster.source == FILE and not include_file:
        raise FleetConflictError(
            f"cluster {name} in {region} is managed by the fleet file; remove it there "
            "(or, for a fleet file no longer in use, `lifeline fleet remove-cluster --force`)"
        )
    live = live_credentials(session, cluster)
    if live:
        raise FleetConflictError(
            f"cluster {name} in {region} has live credentials ({describe_credentials(live)}): revoke "
            "them first, or their certificates and bindings would stay on the cluster with nothing in "
            "Lifeline able to revoke them"
        )
    past = delete_cluster(session, cluster)
    audit_fleet_change(
        session,
        actor,
        "fleet.cluster.remove",
        f"{region}/{name}",
        f"{past} past credential records removed" if past else "",
    )


LIVE_STATUSES = ("issuing", "active")


def live_credentials(session: Session, cluster: Cluster) -> list[Credential]:
    """Credentials on the cluster whose certificate or binding may still be in force."""
    if cluster.id is None:
        return []
    return list(
        session.scalars(
            select(Credential)
            .where(Credential.cluster_pk == cluster.id, Credential.status.in_(LIVE_STATUSES))
            .order_by(Credential.id)
        )
    )


def describe_credentials(rows: list[Credential]) -> str:
    return ", ".join(f"#{c.id} {c.username} ({c.status})" for c in rows)


def delete_cluster(session: Session, cluster: Cluster) -> int:
    """Delete a cluster with no live credentials, and its past credential records (revoked, expired,
    failed: the audit trail keeps their story); returns how many. The foreign key is RESTRICT, so
    nothing else removes them by accident."""
    past = list(session.scalars(select(Credential).where(Credential.cluster_pk == cluster.id)))
    for row in past:
        row.renewal_of_id = None
    session.flush()
    for row in past:
        session.delete(row)
    session.flush()
    session.delete(cluster)
    session.flush()
    return len(past)


def _cluster_outpost(session: Session, region: str, outpost_id: str | None) -> Outpost | None:
    if outpost_id is None:
        return None
    outpost = get_outpost_or_none(session, outpost_id)
    if outpost is None:
        raise FleetValidationError({"outpost_id": f"no Outpost {outpost_id}; add the Outpost first"})
    if outpost.region != region:
        raise FleetValidationError(
            {"outpost_id": f"Outpost {outpost_id} is in {outpost.region}, the cluster in {region}"}
        )
    return outpost


# ---------------------------------------------------------------- the fleet file


def apply_fleet_file(session: Session, fleet: FleetFile, *, actor: Actor = FLEET_FILE_ACTOR) -> FleetChanges:
    """Make the file-managed part of the fleet match `fleet`, all or nothing.

    Every check that needs the database runs before the first change, so a FleetFileError leaves
    the session untouched. Manual rows are never changed (reported as "skip"); discovered rows
    named in the file become file-managed; file-managed rows missing from the file are removed.
    """
    outposts = {o.outpost_id: o for o in session.scalars(select(Outpost))}
    clusters = {(c.name, c.region): c for c in session.scalars(select(Cluster))}
    file_outpost_ids = {o.outpost_id for o in fleet.outposts}
    _check_fleet_references(fleet, outposts, file_outpost_ids)

    changes = FleetChanges()
    for entry in fleet.outposts:
        outpost = outposts.get(entry.outpost_id)
        if outpost is not None and outpost.source == MANUAL:
            changes.add("skip", "outpost", entry.outpost_id, f"{fleet.location(entry.line)}: added by hand")
            continue
        if outpost is None:
            outpost = Outpost(
                outpost_id=entry.outpost_id,
                name=entry.name,
                region=entry.region,
                account_id=entry.account_id,
                source=FILE,
            )
            session.add(outpost)
            outposts[entry.outpost_id] = outpost
            changes.add("add", "outpost", entry.outpost_id, f"{entry.name} in {entry.region}")
            continue
        diff = assign_changed(
            outpost,
            source=FILE,
            name=entry.name,
            region=entry.region,
            account_id=entry.account_id or (outpost.account_id if outpost.source == DISCOVERY else None),
        )
        if diff:
            changes.add("update", "outpost", entry.outpost_id, diff)

    file_cluster_keys = set()
    for cluster_entry in fleet.clusters:
        key = (cluster_entry.name, cluster_entry.region)
        file_cluster_keys.add(key)
        label = f"{cluster_entry.region}/{cluster_entry.name}"
        target = outposts[cluster_entry.outpost_id] if cluster_entry.outpost_id else None
        cluster = clusters.get(key)
        if cluster is not None and cluster.source == MANUAL:
            changes.add("skip", "cluster", label, f"{fleet.location(cluster_entry.line)}: added by hand")
            continue
        if cluster is None:
            cluster = Cluster(
                name=cluster_entry.name, region=cluster_entry.region, source=FILE, health_issues=[]
            )
            cluster.outpost = target
            session.add(cluster)
            changes.add("add", "cluster", label, cluster_entry.outpost_id or "")
            continue
        diff = assign_changed(cluster, source=FILE)
        if target is not None and cluster.outpost is not target:
            cluster.outpost = target
            diff = ", ".join(part for part in (diff, f"outpost -> {target.outpost_id}") if part)
        if diff:
            changes.add("update", "cluster", label, diff)

    for key, cluster in clusters.items():
        if cluster.source == FILE and key not in file_cluster_keys:
            label = f"{cluster.region}/{cluster.name}"
            live = live_credentials(session, cluster)
            if live:
                changes.add(
                    "skip",
                    "cluster",
                    label,
                    f"no longer in the file, but kept: live credentials {describe_credentials(live)}; "
                    "revoke them, then the next sync removes it",
                )
                log.warning("fleet file: %s kept, live credentials %s", label, describe_credentials(live))
                continue
            delete_cluster(session, cluster)
            changes.add("remove", "cluster", label, "no longer in the file")
    for outpost_id, outpost in outposts.items():
        if outpost.source == FILE and outpost_id not in file_outpost_ids:
            for cluster in list(outpost.clusters):
                cluster.outpost = None
            session.delete(outpost)
            changes.add("remove", "outpost", outpost_id, "no longer in the file")
    session.flush()
    for change in changes.changes:
        if change.action != "skip":
            audit_fleet_change(
                session, actor, f"fleet.{change.kind}.{change.action}", change.key, change.detail
            )
    return changes


def _check_fleet_references(fleet: FleetFile, outposts: dict[str, Outpost], file_ids: set[str]) -> None:
    problems = []
    for cluster in fleet.clusters:
        if cluster.outpost_id is None or cluster.outpost_id in file_ids:
            continue
        known = outposts.get(cluster.outpost_id)
        if known is None or known.source == FILE:
            problems.append(
                FleetFileProblem(
                    fleet.source,
                    cluster.line,
                    f"cluster {cluster.name}: Outpost {cluster.outpost_id} is not in the file "
                    "and not otherwise known; add it under `outposts:`",
                )
            )
        elif known.region != cluster.region:
            problems.append(
                FleetFileProblem(
                    fleet.source,
                    cluster.line,
                    f"cluster {cluster.name} is in {cluster.region} but Outpost "
                    f"{cluster.outpost_id} is in {known.region}",
                )
            )
    for entry in fleet.outposts:
        known = outposts.get(entry.outpost_id)
        if known is not None and known.source == DISCOVERY and known.region != entry.region:
            problems.append(
                FleetFileProblem(
                    fleet.source,
                    entry.line,
                    f"Outpost {entry.outpost_id}: region {entry.region} but discovery found it in "
                    f"{known.region}",
                )
            )
    if problems:
        raise FleetFileError(problems)


def assign_changed(
    row: Outpost | Cluster, *, quiet: frozenset[str] | set[str] = frozenset(), **values: object
) -> str:
    """Set attributes that differ; return 'name: a -> b, ...' for those that changed.

    Attributes in `quiet` are set but described only by name (long or secret-looking values).
    """
    diffs = []
    for key, value in values.items():
        old = getattr(row, key)
        if old != value:
            setattr(row, key, value)
            diffs.append(key if key in quiet else f"{key}: {old} -> {value}")
    return ", ".join(diffs)
