"""The one owner of a drill's check rounds, for the scheduler, the web edge, the CLI and the demo.

A round reads a snapshot (committed session closed), runs the checks with no transaction open (a
real credential issue and revoke goes through `app.services.credentials.runs`, which commits in
its own sessions), then writes every result in one short transaction: a status change is a
timeline entry, and an item turning to fail is announced once through the outbox.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations.aws import AwsClients
from app.integrations.kube.kubeconfig import KubeconfigError, read_kubeconfig
from app.integrations.kube.types import ClusterTarget, KubeAuth
from app.models import ClusterReadiness, Credential, Drill, DrillCheck, SiteView
from app.models.base import utcnow
from app.services.audit import SYSTEM, Actor
from app.services.credentials import runs
from app.services.credentials.access import control_plane_ips, fallback_identity
from app.services.credentials.keys import open_key, vault_from_settings
from app.services.credentials.vocabulary import IssueRequest
from app.services.drills import checks, lifecycle
from app.services.drills.checks import ClusterPlan, KeyedCredential, Plan, Result
from app.services.drills.vocabulary import CONFIRM, FAIL, ITEMS, PASS, PENDING, RUNNING
from app.services.errors import ServiceError
from app.services.readiness.model import Finding, Status
from app.settings import Settings

log = logging.getLogger(__name__)

NO_IDENTITY = (
    "no fallback identity (issue it on the Emergency access page) and no operator kubeconfig "
    "in LIFELINE_READINESS_X509_KUBECONFIG_DIR"
)


def _identity(
    session: Session, settings: Settings, cluster_pk: int, name: str
) -> tuple[tuple[KubeAuth, str] | None, str]:
    try:
        fallback = fallback_identity(session, vault_from_settings(settings), cluster_pk)
    except ServiceError as exc:
        return None, f"the fallback identity's key cannot be opened: {exc}"
    if fallback is not None:
        return (KubeAuth.x509(fallback.certificate_pem, fallback.key_pem.decode()), "fallback identity"), ""
    directory = settings.readiness_x509_kubeconfig_dir
    if directory is not None and (Path(directory) / f"{name}.yaml").is_file():
        path = Path(directory) / f"{name}.yaml"
        try:
            found = read_kubeconfig(path).current()
        except KubeconfigError as exc:
            return None, str(exc)
        if found is not None and found.auth.method == "x509":
            return (found.auth, str(path)), ""
        return None, f"{path}: its current context has no x509 user"
    return None, NO_IDENTITY


def _predicted(session: Session, cluster_pk: int) -> tuple[str, ...]:
    state = session.get(ClusterReadiness, cluster_pk)
    refs: list[str] = []
    for item in state.findings if state else []:
        found = Finding.from_dict(item)
        if found.check_id in checks.PREDICTED_CHECKS and found.status in (Status.fail, Status.warn):
            refs.extend(ev.ref for ev in found.evidence if ev.namespace)
    return tuple(dict.fromkeys(refs))


def build_plan(session: Session, settings: Settings, drill: Drill, now: dt.datetime) -> Plan:
    """Everything the checks need, read at once (keys unsealed in memory only)."""
    vault = vault_from_settings(settings)
    outpost = drill.outpost
    view = session.get(SiteView, (settings.vantage, outpost.id))
    baselines = {(c.item, c.subject): c.baseline for c in drill.checks if c.item == "nodes_workloads"}
    clusters = []
    for cluster in lifecycle.clusters_of(session, drill):
        target = (
            ClusterTarget(
                cluster.name,
                cluster.region,
                cluster.endpoint,
                cluster.certificate_authority,
                cluster.cluster_uid,
            )
            if cluster.endpoint and cluster.certificate_authority
            else None
        )
        keyed = []
        for credential in session.scalars(
            select(Credential)
            .where(
                Credential.cluster_pk == cluster.id,
                Credential.kind == "breakglass",
                Credential.status == "active",
            )
            .order_by(Credential.id)
        ):
            if credential.certificate_pem is None or (credential.not_after and credential.not_after <= now):
                continue
            key: bytes | None = None
            if credential.encrypted_key is not None and vault is not None:
                try:
                    key = open_key(credential, vault)
                except ServiceError as exc:
                    log.warning(
                        "drill %s: key of credential %s unavailable: %s", drill.id, credential.id, exc
                    )
            keyed.append(
                KeyedCredential(
                    credential.id,
                    credential.username,
                    credential.binding_name or "",
                    credential.cluster_role,
                    credential.certificate_pem,
                    key,
                    control_plane_ips(session, credential),
                )
            )
        identity, missing = _identity(session, settings, cluster.id, cluster.name)
        clusters.append(
            ClusterPlan(
                cluster.id,
                cluster.name,
                target,
                tuple(keyed),
                identity,
                missing,
                _predicted(session, cluster.id),
                dict(baselines.get(("nodes_workloads", cluster.name)) or {}),
            )
        )
    return Plan(
        drill_id=drill.id,
        started_at=drill.started_at or now,
        outpost_name=outpost.name,
        cloudwatch_state=outpost.state,
        cloudwatch_since=outpost.state_since,
        site_state=view.state if view else None,
        site_since=view.since if view else None,
        site_evidence=tuple(str(e) for e in (view.evidence if view else [])),
        vantage=settings.vantage,
        clusters=tuple(clusters),
        items=tuple(drill.checklist),
    )


def run_round(
    settings: Settings,
    session_factory: sessionmaker[Session],
    drill_id: int,
    *,
    now: dt.datetime | None = None,
    actor: Actor = SYSTEM,
) -> list[Result]:
    """One round of every automatic check of a running drill; returns what it found."""
    now = now or utcnow()
    with session_scope(session_factory) as session:
        drill = lifecycle.get_drill(session, drill_id)
        if drill.state != RUNNING:
            return []
        plan = build_plan(session, settings, drill, now)
        settled = {(c.item, c.subject): c.status for c in drill.checks}
    results = _run_checks(settings, session_factory, plan, settled, now)
    with session_scope(session_factory) as session:
        drill = lifecycle.get_drill(session, drill_id)
        if drill.state == RUNNING:
            record_results(session, drill, results, now, actor=actor)
    return results


def _run_checks(
    settings: Settings,
    session_factory: sessionmaker[Session],
    plan: Plan,
    settled: dict[tuple[str, str], str],
    now: dt.datetime,
) -> list[Result]:
    timeout = settings.probe_timeout_seconds
    clients = AwsClients(
        endpoint_url=settings.aws_endpoint_url,
        connect_timeout=min(settings.aws_connect_timeout_seconds, timeout),
        read_timeout=min(settings.aws_read_timeout_seconds, timeout * 2),
        max_attempts=1,
    )
    items = set(plan.items)
    results: list[Result] = []
    if "disconnect" in items:
        results.append(checks.check_disconnect(plan, now))
    for cluster in plan.clusters:
        guarded = [
            ("iam_refused", lambda c=cluster: [checks.check_iam(c, clients, timeout)]),
            ("breakglass", lambda c=cluster: checks.check_breakglass(c, timeout)),
        ]
        for item, run in guarded:
            if item in items:
                results.extend(_safely(item, cluster, run))
        reads = items & {"lifeline_reads", "nodes_workloads", "predictions"}
        if reads:
            results.extend(
                _safely(
                    "lifeline_reads",
                    cluster,
                    lambda c=cluster, r=reads: checks.check_cluster_reads(c, timeout, r),
                )
            )
        if "issue_new" in items and settled.get(("issue_new", cluster.name)) not in (PASS, FAIL):
            results.append(issue_and_revoke(settings, session_factory, plan, cluster))
        results.extend(
            r for r in checks.person_items(cluster, items) if settled.get((r.item, r.subject)) is None
        )
    return results


def _safely(item: str, cluster: ClusterPlan, run: object) -> list[Result]:
    """A crashing check becomes a failed item with its reason, never a silent gap."""
    try:
        return run()  # type: ignore[operator,no-any-return]
    except Exception as exc:
        log.exception("drill check %s on %s crashed", item, cluster.name)
        return [
            Result(
                item,
                cluster.name,
                FAIL,
                f"The check could not run: {type(exc).__name__}: {exc}",
                cluster_pk=cluster.cluster_pk,
            )
        ]


def issue_and_revoke(
    settings: Settings, session_factory: sessionmaker[Session], plan: Plan, cluster: ClusterPlan
) -> Result:
    """A real issue (short lifetime, ClusterRole view) through the credential runs, then its revocation."""
    username = f"lifeline-drill-{plan.drill_id}-{cluster.cluster_pk}"
    request = IssueRequest(
        cluster_pk=cluster.cluster_pk,
        username=username,
        group=None,
        cluster_role="view",
        lifetime_seconds=settings.drill_issue_lifetime_seconds,
    )
    started = utcnow()
    try:
        credential_id = runs.start_issue(settings, session_factory, request, SYSTEM)
        status = runs.run_issue(settings, session_factory, credential_id, SYSTEM)
    except ServiceError as exc:
        return Result(
            "issue_new", cluster.name, FAIL, f"Issuing was refused: {exc}", cluster_pk=cluster.cluster_pk
        )
    with session_scope(session_factory) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None
        error, serial = credential.error, credential.serial_hex
    took = (utcnow() - started).total_seconds()
    if status != "active":
        return Result(
            "issue_new",
            cluster.name,
            FAIL,
            f"Issuing credential #{credential_id} failed: {error}",
            (f"credential #{credential_id} ({username})",),
            cluster.cluster_pk,
        )
    evidence = [f"credential #{credential_id} ({username}, serial {serial}) issued in {took:.1f} s"]
    try:
        runs.revoke(settings, session_factory, credential_id, SYSTEM)
        evidence.append(f"credential #{credential_id} revoked (binding deleted)")
    except ServiceError as exc:
        return Result(
            "issue_new",
            cluster.name,
            FAIL,
            f"Issued credential #{credential_id}, but revoking it failed: {exc}",
            tuple(evidence),
            cluster.cluster_pk,
        )
    return Result(
        "issue_new",
        cluster.name,
        PASS,
        f"Issued credential #{credential_id} during the disconnect and revoked it",
        tuple(evidence),
        cluster.cluster_pk,
    )


def record_results(
    session: Session, drill: Drill, results: list[Result], now: dt.datetime, *, actor: Actor = SYSTEM
) -> None:
    """Upsert each result on (drill, item, subject); a status change goes on the timeline."""
    existing = {(c.item, c.subject): c for c in drill.checks}
    for result in results:
        check = existing.get((result.item, result.subject))
        if check is None:
            check = DrillCheck(
                drill_id=drill.id,
                item=result.item,
                subject=result.subject,
                cluster_pk=result.cluster_pk,
                status=PENDING,
                summary="",
                evidence=[],
                baseline={},
                rounds=0,
                first_checked_at=now,
            )
            drill.checks.append(check)
            existing[(result.item, result.subject)] = check
        elif check.confirmed_by is not None:
            continue  # a person's confirmation is final
        before = check.status if check.rounds else None
        check.status, check.summary = result.status, result.summary
        check.evidence = [{"at": now.isoformat(), "text": line} for line in result.evidence]
        if result.baseline is not None and not check.baseline:
            check.baseline = result.baseline
        check.checked_at = now
        check.rounds += 1
        if before != result.status and result.status != PENDING:
            label = ITEMS[result.item].label if result.item in ITEMS else result.item
            kind = {PASS: "item_passed", FAIL: "item_failed", CONFIRM: "needs_confirmation"}[result.status]
            lifecycle.add_event(
                session, drill, kind, f"{label} — {result.subject}: {result.summary}", actor.name, now
            )
            if result.status == FAIL:
                lifecycle.notify_item_failed(session, drill, check, now)
    drill.last_checked_at = now
    session.flush()


def advance(
    settings: Settings, session_factory: sessionmaker[Session], *, now: dt.datetime | None = None
) -> dict[str, int]:
    """What the scheduler does every interval: start due planned drills, run a round of each running
    drill, end those whose window is over. One failing drill does not stop the others."""
    now = now or utcnow()
    counts = {"started": 0, "checked": 0, "ended": 0}
    with session_scope(session_factory) as session:
        for drill in lifecycle.due_to_start(session, now):
            try:
                with session.begin_nested():
                    lifecycle.start_drill(session, drill, SYSTEM, now)
                counts["started"] += 1
            except ServiceError as exc:
                log.warning("drill %s not started: %s", drill.id, exc)
        running = [d.id for d in lifecycle.running_drills(session)]
    for drill_id in running:
        try:
            run_round(settings, session_factory, drill_id, now=now)
            counts["checked"] += 1
        except Exception:
            log.exception("drill %s: check round crashed", drill_id)
    with session_scope(session_factory) as session:
        for drill in lifecycle.due_to_end(session, now):
            lifecycle.end_drill(session, drill, SYSTEM, now, valid_days=settings.drill_valid_days)
            counts["ended"] += 1
    return counts
