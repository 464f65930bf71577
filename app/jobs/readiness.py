"""Cluster readiness poller: authenticate with the one identity choice of the Kubernetes adapter (EKS
IAM token, else Lifeline's x509 identity), collect the cluster's objects page by page and its AWS
facts, evaluate the catalogue, store a summary per poll.

Clusters are polled in a bounded thread pool; one failing cluster never stops the others, and
each gets its own PollRun. Pods are streamed into running summaries, never held all at once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations import readiness_aws
from app.integrations.aws import AwsClients
from app.integrations.eks import EksClient
from app.integrations.eks_network import control_plane_ips, resolve_host
from app.integrations.kube.client import KubeConnection, KubeForbidden, KubeNotFound
from app.integrations.kube.identity import NONE, IdentityChoice, choose_identity, token_cache
from app.integrations.kube.kubeconfig import (
    KubeconfigError,
    endpoint_host,
    hosts_lines,
    read_kubeconfig,
)
from app.integrations.kube.types import ClusterTarget, Identity, KubeAuth, ca_pem_from_data
from app.integrations.vault import vault_or_none
from app.jobs import triggers
from app.models import Cluster, PollRun
from app.models.base import utcnow
from app.services.credentials.access import fallback_identity
from app.services.credentials.identities import READER, own_identity
from app.services.readiness import records
from app.services.readiness.catalogue import evaluate
from app.services.readiness.checks_capacity import node_capacities
from app.services.readiness.checks_network import ALB, alb_ingresses
from app.services.readiness.checks_observability import is_log_agent
from app.services.readiness.model import AwsFacts, CheckContext, ClusterFacts, CredentialFact
from app.services.readiness.objects import annotations_of, instance_type_of, workload_groups
from app.services.readiness.records import PollResult
from app.services.readiness.snapshot import SnapshotBuilder
from app.settings import Settings

log = logging.getLogger(__name__)

JOB = "cluster"

# (apiVersion, plural, kind): what the checks read. A type the server does not serve (404) or the
# identity may not list (403, e.g. RBAC bindings for a `view` identity) is skipped, and the checks
# that need it say "unknown".
RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("v1", "nodes", "Node"),
    ("v1", "namespaces", "Namespace"),
    ("v1", "pods", "Pod"),
    ("v1", "services", "Service"),
    ("v1", "serviceaccounts", "ServiceAccount"),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ("v1", "persistentvolumes", "PersistentVolume"),
    ("apps/v1", "deployments", "Deployment"),
    ("apps/v1", "statefulsets", "StatefulSet"),
    ("apps/v1", "daemonsets", "DaemonSet"),
    ("v1", "replicationcontrollers", "ReplicationController"),
    ("batch/v1", "jobs", "Job"),
    ("batch/v1", "cronjobs", "CronJob"),
    ("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("storage.k8s.io/v1", "storageclasses", "StorageClass"),
    ("snapshot.storage.k8s.io/v1", "volumesnapshotclasses", "VolumeSnapshotClass"),
    ("networking.k8s.io/v1", "ingresses", "Ingress"),
    ("networking.k8s.io/v1", "ingressclasses", "IngressClass"),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    ("certificates.k8s.io/v1", "certificatesigningrequests", "CertificateSigningRequest"),
    ("elbv2.k8s.aws/v1beta1", "targetgroupbindings", "TargetGroupBinding"),
)

NO_X509 = "not configured: no reader or fallback identity or operator kubeconfig for this cluster"


@dataclass(frozen=True)
class PollTarget:
    """Everything a poll needs from the database, read before any network call."""

    pk: int
    name: str
    region: str
    cluster_uid: str | None
    cached: ClusterFacts
    certificate_authority: str | None
    x509: Identity | None
    credentials: tuple[CredentialFact, ...]
    context: CheckContext
    prev_status: str | None
    prev_status_since: str | None
    x509_missing: str = NO_X509


@dataclass
class Collected:
    builder: SnapshotBuilder
    requests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    triggers.attach(scheduler)  # connectivity changes enqueue an immediate poll on this scheduler
    scheduler.add_job(
        run_once,
        "interval",
        seconds=settings.readiness_poll_interval_seconds,
        args=[settings, session_factory],
        id="clusters",
        name="cluster readiness",
        max_instances=1,
        coalesce=True,
        # The first poll is the start-up run (app.jobs.scheduler.run_startup), right after discovery.
        next_run_time=dt.datetime.now(dt.UTC)
        + dt.timedelta(seconds=settings.readiness_poll_interval_seconds),
    )


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """Poll every cluster once (bounded concurrency); then drop samples past their retention."""
    poll_clusters(settings, session_factory)


def poll_clusters(
    settings: Settings, session_factory: sessionmaker[Session], *, cluster_ids: Collection[int] | None = None
) -> dict[str, str]:
    """Poll every cluster (or only `cluster_ids`: "poll now"); return {"region/name": "ok" |
    "unreachable" | "error"}."""
    with session_scope(session_factory) as session:
        targets = load_targets(session, settings, cluster_ids=cluster_ids)
        records.prune_samples(session, utcnow() - dt.timedelta(days=settings.readiness_history_days))
    outcomes: dict[str, str] = {}
    if not targets:
        return outcomes
    with ThreadPoolExecutor(
        max_workers=settings.readiness_poll_concurrency, thread_name_prefix="readiness"
    ) as pool:
        futures = {pool.submit(poll_cluster, settings, session_factory, t): t for t in targets}
        for future in as_completed(futures):
            target = futures[future]
            key = f"{target.region}/{target.name}"
            try:
                outcomes[key] = future.result()
            except Exception:  # poll_cluster records its own errors; this is a last resort
                log.exception("readiness poll of %s failed", key)
                outcomes[key] = "error"
    return outcomes


def load_targets(
    session: Session, settings: Settings, *, cluster_ids: Collection[int] | None = None
) -> list[PollTarget]:
    vault = vault_or_none(
        settings.data_key.get_secret_value() if settings.data_key else None, settings.data_key_file
    )
    targets = []
    query = select(Cluster).order_by(Cluster.name)
    if cluster_ids is not None:
        query = query.where(Cluster.id.in_(list(cluster_ids)))
    for cluster in session.scalars(query):
        state = records.get_state(session, cluster)
        x509, x509_missing = _x509_identity(session, settings, vault, cluster)
        facts = dict(state.facts) if state else {}
        targets.append(
            PollTarget(
                pk=cluster.id,
                name=cluster.name,
                region=cluster.region,
                cluster_uid=cluster.cluster_uid,
                cached=ClusterFacts(
                    status=cluster.status,
                    endpoint=cluster.endpoint,
                    cluster_uid=cluster.cluster_uid,
                    platform_version=cluster.platform_version,
                    control_plane_instance_type=cluster.control_plane_instance_type,
                    outpost_id=cluster.outpost.outpost_id if cluster.outpost else None,
                    health_issues=tuple(cluster.health_issues or ()),
                ),
                certificate_authority=cluster.certificate_authority,
                x509=x509,
                credentials=records.credential_facts(session, cluster),
                context=records.check_context(settings, state),
                prev_status=facts.get("status"),
                prev_status_since=facts.get("status_since"),
                x509_missing=x509_missing,
            )
        )
    return targets


def _x509_identity(
    session: Session, settings: Settings, vault: Any, cluster: Cluster
) -> tuple[Identity | None, str]:
    """Lifeline's own reader identity, else its fallback identity, else an operator-provided
    kubeconfig (`<dir>/<cluster>.yaml`); with the message to record when there is none."""
    try:
        reader = own_identity(session, vault, cluster.id, READER)
    except Exception as exc:  # a wrong data key must not stop polling through IAM
        log.warning("reader identity of %s unavailable: %s", cluster.name, exc)
        reader = None
    if reader is not None:
        return reader, NO_X509
    try:
        identity = fallback_identity(session, vault, cluster.id)
    except Exception as exc:  # a wrong data key must not stop polling through IAM
        log.warning("fallback identity of %s unavailable: %s", cluster.name, exc)
        identity = None
    if identity is not None:
        auth = KubeAuth.x509(identity.certificate_pem, identity.key_pem.decode())
        return Identity(auth, "fallback identity"), NO_X509
    directory = settings.readiness_x509_kubeconfig_dir
    if directory is None:
        return None, NO_X509
    path = Path(directory) / f"{cluster.name}.yaml"
    if not path.is_file():
        return None, NO_X509
    try:
        return kubeconfig_identity(path), f"{path}: its current context has no x509 user"
    except KubeconfigError as exc:
        log.warning("operator kubeconfig of %s unusable: %s", cluster.name, exc)
        return None, str(exc)


def kubeconfig_identity(path: Path) -> Identity | None:
    """The current context's x509 user with its server and CA (embedded data or file paths)."""
    identity = read_kubeconfig(path).current()
    return identity if identity is not None and identity.auth.method == "x509" else None


# ---------------------------------------------------------------- one cluster


def poll_cluster(settings: Settings, session_factory: sessionmaker[Session], target: PollTarget) -> str:
    """Poll one cluster and record the outcome; never raises for a cluster problem."""
    started = utcnow()
    with session_scope(session_factory) as session:
        run = PollRun(job=JOB, scope=f"{target.region}/{target.name}", started_at=started)
        session.add(run)
        session.flush()
        run_id = run.id
    outcome = "error"
    requests = items = 0
    error: str | None = None
    try:
        result, requests, items = _poll(settings, target, started)
        outcome = "ok" if result.reachable else "unreachable"
        error = result.error
    except Exception as exc:
        log.exception("readiness poll of %s/%s failed", target.region, target.name)
        error = f"{type(exc).__name__}: {exc}"
        result = PollResult(polled_at=started, auth_path="none", reachable=False, error=error)
    with session_scope(session_factory) as session:
        cluster = session.get(Cluster, target.pk)
        if cluster is not None:
            records.record_poll(session, cluster, result)
        finished = session.get(PollRun, run_id)
        if finished is not None:
            run = finished
            run.finished_at = utcnow()
            run.outcome = "ok" if outcome == "ok" else "error"
            run.error = error
            run.requests = requests
            run.items = items
    return outcome


def _poll(settings: Settings, target: PollTarget, now: dt.datetime) -> tuple[PollResult, int, int]:
    clients = AwsClients.from_settings(settings)
    aws_errors: dict[str, str] = {}
    described = _aws(
        aws_errors, "DescribeCluster", lambda: EksClient(clients, target.region).describe_cluster(target.name)
    )
    cluster_facts = target.cached
    ca_data = target.certificate_authority
    if described is not None:
        cluster_facts = ClusterFacts(
            status=described.status,
            endpoint=described.endpoint,
            cluster_uid=described.cluster_uid,
            platform_version=described.platform_version,
            control_plane_instance_type=described.control_plane_instance_type,
            outpost_id=described.outpost_id or target.cached.outpost_id,
            health_issues=tuple(issue.as_dict() for issue in described.health_issues),
        )
        ca_data = described.certificate_authority or ca_data
    status_since = _status_since(target, cluster_facts.status, now)
    cluster_facts = replace(cluster_facts, status_since=status_since)
    endpoint = cluster_facts.endpoint or (target.x509.server if target.x509 else None)
    facts: dict[str, Any] = {
        "endpoint": endpoint,
        "status": cluster_facts.status,
        "status_since": status_since.isoformat() if status_since else None,
    }
    eni_ips = _aws(
        aws_errors,
        "DescribeNetworkInterfaces",
        lambda: control_plane_ips(clients, target.region, target.name),
    )
    resolved, resolve_error = _resolve(endpoint)
    facts.update(
        eni_ips=list(eni_ips or ()),
        resolved_ips=list(resolved or ()),
        hosts_lines=hosts_lines(endpoint, tuple(eni_ips or ())),
    )
    alarms = _aws(
        aws_errors, "DescribeAlarms", lambda: readiness_aws.connected_status_alarms(clients, target.region)
    )
    slots = None
    if cluster_facts.outpost_id and cluster_facts.control_plane_instance_type:
        slots = _aws(
            aws_errors,
            "GetMetricStatistics",
            lambda: readiness_aws.available_instance_slots(
                clients,
                target.region,
                str(cluster_facts.outpost_id),
                str(cluster_facts.control_plane_instance_type),
                now,
            ),
        )

    ca_pem = _ca_pem(ca_data) or (target.x509.ca_pem if target.x509 else None)
    auth = _authenticate(settings, clients, target, endpoint, ca_pem)
    facts["auth"] = auth.summary
    connection = auth.connection
    if connection is None:
        facts["aws_errors"] = aws_errors
        error = "; ".join(e for e in (auth.iam_error, auth.x509_error) if e) or "no way to authenticate"
        result = PollResult(
            polled_at=now,
            auth_path="none",
            reachable=False,
            facts=facts,
            iam_error=auth.iam_error,
            x509_error=auth.x509_error,
            error=error,
            api_answered=auth.answered,
        )
        return result, 0, 0
    with connection:
        collected = collect(connection, settings.readiness_page_size)
    preview = collected.builder.build(target.name, live=True)
    node_types = {instance_type_of(node) or "" for node in preview.of_kind("Node")}
    limits = _aws(
        aws_errors,
        "DescribeInstanceTypes",
        lambda: readiness_aws.instance_network_limits(clients, target.region, node_types),
    )
    arns = {
        arn.strip()
        for ingress in alb_ingresses(preview)
        for arn in str(annotations_of(ingress).get(ALB + "certificate-arn", "")).split(",")
        if arn.strip()
    }
    certificates = _aws(
        aws_errors, "DescribeCertificate", lambda: readiness_aws.certificates(clients, target.region, arns)
    )
    aws = AwsFacts(
        cluster=cluster_facts if cluster_facts.status else None,
        eni_ips=eni_ips,
        resolved_ips=resolved,
        resolve_error=resolve_error,
        alarms=alarms,
        instance_types=limits,
        certificates=certificates,
        control_plane_slots_available=slots,
        credentials=target.credentials,
    )
    snapshot = replace(preview, aws=aws, collected_at=now)
    findings = evaluate(snapshot, target.context, attestations=None)
    facts.update(
        objects=collected.counts,
        skipped=collected.skipped,
        aws_errors=aws_errors,
        pods=snapshot.pods.total,
        workload_groups=len(snapshot.pods.groups),
    )
    result = PollResult(
        polled_at=now,
        auth_path=auth.path,
        reachable=True,
        findings=tuple(findings),
        nodes=tuple(n.as_dict() for n in node_capacities(snapshot)),
        facts=facts,
        iam_error=auth.iam_error,
        x509_error=auth.x509_error,
        pods=snapshot.pods.total,
        api_answered=True,
        x509_ok=auth.path == "x509" or (auth.x509_probed and auth.x509_error is None),
    )
    return result, collected.requests, sum(collected.counts.values())


def _status_since(target: PollTarget, status: str | None, now: dt.datetime) -> dt.datetime | None:
    if status is None:
        return None
    if status == target.prev_status and target.prev_status_since:
        return dt.datetime.fromisoformat(target.prev_status_since)
    return now


def _aws(errors: dict[str, str], label: str, call: Callable[[], Any]) -> Any:
    """Run one AWS read; on failure record why and return None (the checks then say unknown)."""
    try:
        return call()
    except Exception as exc:
        errors[label] = f"{type(exc).__name__}: {exc}"[:300]
        return None


def _resolve(endpoint: str | None) -> tuple[tuple[str, ...] | None, str | None]:
    host = endpoint_host(endpoint)
    if not host:
        return None, "no endpoint"
    try:
        return (str(ipaddress.ip_address(host)),), None
    except ValueError:
        pass
    resolved = resolve_host(host)
    return resolved, None if resolved else f"{host} did not resolve"


def _ca_pem(ca_data: str | None) -> str | None:
    if not ca_data:
        return None
    try:
        return ca_pem_from_data(ca_data)
    except Exception:
        return None


def _authenticate(
    settings: Settings, clients: AwsClients, target: PollTarget, endpoint: str | None, ca_pem: str | None
) -> IdentityChoice:
    """The identity choice, probing both IAM and x509 so the page can say which works."""
    if not endpoint or not ca_pem:
        missing = "endpoint" if not endpoint else "cluster CA"
        message = f"no {missing} known (DescribeCluster has not succeeded yet)"
        return IdentityChoice(None, NONE, "", message, message, True)
    cluster = ClusterTarget(target.name, target.region, endpoint, ca_pem, target.cluster_uid)
    return choose_identity(
        cluster,
        tokens=token_cache(clients),
        x509=target.x509,
        x509_missing=target.x509_missing,
        timeout=settings.readiness_kube_timeout_seconds,
        probe_both=True,
    )


def collect(connection: KubeConnection, page_size: int) -> Collected:
    """List every resource type page by page; pods go straight into the digest."""
    collected = Collected(SnapshotBuilder())
    for api_version, plural, kind in RESOURCES:
        token = ""
        count = 0
        try:
            while True:
                page = connection.list_objects(api_version, plural, limit=page_size, continue_token=token)
                collected.requests += 1
                for item in page.items:
                    collected.builder.add(item, kind)
                count += len(page.items)
                token = page.continue_token
                if not token:
                    break
        except KubeNotFound:
            collected.skipped[kind] = "not served by this cluster"
            continue
        except KubeForbidden as exc:
            collected.skipped[kind] = f"forbidden: {exc}"[:200]
            continue
        collected.builder.collected(kind)
        collected.counts[kind] = count
    _collect_agent_config_maps(connection, collected)
    return collected


# A live poll does not list every ConfigMap (they can be large and many); it reads only those the
# log agents mount, which say where the logs go (local-observability), at most this many.
MAX_AGENT_CONFIG_MAPS = 50


def _collect_agent_config_maps(connection: KubeConnection, collected: Collected) -> None:
    provisional = collected.builder.build("", live=True)  # side-effect free: the real build follows
    mounted = {
        (group.namespace, name): None
        for group in workload_groups(provisional)
        if is_log_agent(group)
        for name in group.config_maps
    }
    wanted = list(mounted)[:MAX_AGENT_CONFIG_MAPS]
    if not wanted:
        return
    for namespace, name in wanted:
        try:
            config_map = connection.get_object("v1", "configmaps", name, namespace=namespace)
        except KubeNotFound:
            continue  # a pod mounting a missing ConfigMap: nothing to read
        except KubeForbidden as exc:
            collected.skipped["ConfigMap"] = f"forbidden: {exc}"[:200]
            return
        finally:
            collected.requests += 1
        collected.builder.add(config_map, "ConfigMap")
    collected.builder.collected("ConfigMap")
    collected.counts["ConfigMap"] = len(wanted)
