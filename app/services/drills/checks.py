"""The checks Lifeline runs on its own during a drill, over a snapshot read before any network call
(`Plan`): each returns `Result`s (status, a one-line summary, evidence lines). Private keys are
unsealed into the plan in memory only and reach the cluster through the adapter's memfd files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.integrations import probes
from app.integrations.aws import AwsClients
from app.integrations.kube.client import KubeConnection, KubeError, connect
from app.integrations.kube.identity import describe, token_cache
from app.integrations.kube.kubeconfig import endpoint_host
from app.integrations.kube.types import ClusterTarget, KubeAuth, ca_pem_from_data
from app.services.connectivity.status import CONNECTED, DISCONNECTED
from app.services.drills.vocabulary import CONFIRM, FAIL, PASS, PENDING

# CloudWatch reports a minute or two late and the site view waits for its hysteresis: a drill's
# first minutes may still show "connected" without the disconnect having failed.
DISCONNECT_GRACE = dt.timedelta(minutes=5)
PREDICTED_CHECKS = ("ebs-workloads", "image-sources")
PULL_FAILURES = {"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName"}


@dataclass(frozen=True)
class Result:
    item: str
    subject: str
    status: str
    summary: str
    evidence: tuple[str, ...] = ()
    cluster_pk: int | None = None
    baseline: dict[str, Any] | None = None


@dataclass(frozen=True)
class KeyedCredential:
    """A break-glass credential as the drill uses it (key unsealed in memory, None for uploaded CSRs)."""

    credential_id: int
    username: str
    binding_name: str
    cluster_role: str
    certificate_pem: str
    key_pem: bytes | None = field(repr=False)
    control_plane_ips: tuple[str, ...]


@dataclass(frozen=True)
class ClusterPlan:
    cluster_pk: int
    name: str
    target: ClusterTarget | None
    credentials: tuple[KeyedCredential, ...]
    # Lifeline's own x509 identity: (auth, where it comes from), or why there is none.
    identity: tuple[KubeAuth, str] | None
    identity_missing: str
    predicted: tuple[str, ...]  # readiness evidence refs (Kind/ns/name) predicted to fail
    baseline: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    drill_id: int
    started_at: dt.datetime
    outpost_name: str
    cloudwatch_state: str
    cloudwatch_since: dt.datetime | None
    site_state: str | None
    site_since: dt.datetime | None
    site_evidence: tuple[str, ...]
    vantage: str
    clusters: tuple[ClusterPlan, ...]
    items: tuple[str, ...]


# ---------------------------------------------------------------- the Outpost


def check_disconnect(plan: Plan, now: dt.datetime) -> Result:
    """ConnectedStatus (CloudWatch) and the site view from this dashboard both say disconnected."""
    cw = f"CloudWatch ConnectedStatus: {plan.cloudwatch_state}" + (
        f" since {plan.cloudwatch_since:%H:%M:%S} UTC" if plan.cloudwatch_since else ""
    )
    site = (
        f"site view from {plan.vantage}: {plan.site_state}"
        + (f" since {plan.site_since:%H:%M:%S} UTC" if plan.site_since else "")
        if plan.site_state
        else f"no site view from {plan.vantage} (site probes off, or no cluster on this Outpost)"
    )
    evidence = (cw, site, *plan.site_evidence)
    if plan.cloudwatch_state == DISCONNECTED and plan.site_state == DISCONNECTED:
        return Result(
            "disconnect", plan.outpost_name, PASS, "CloudWatch and the site view agree: cut off", evidence
        )
    connected = [
        who
        for who, state in (("CloudWatch", plan.cloudwatch_state), ("the site view", plan.site_state))
        if state == CONNECTED
    ]
    in_grace = now - plan.started_at < DISCONNECT_GRACE
    if connected and not in_grace:
        return Result(
            "disconnect",
            plan.outpost_name,
            FAIL,
            f"The Outpost is not cut off: {' and '.join(connected)} still report it connected "
            "(is the firewall rule on the service link in place?)",
            evidence,
        )
    return Result(
        "disconnect",
        plan.outpost_name,
        PENDING,
        "Waiting for CloudWatch and the site view to agree on a disconnect",
        evidence,
    )


# ---------------------------------------------------------------- per cluster


def check_iam(cluster: ClusterPlan, clients: AwsClients, timeout: float) -> Result:
    """An EKS IAM token must be refused (401) while the Outpost cannot reach the Region."""
    subject = cluster.name
    if cluster.target is None:
        return Result(
            "iam_refused",
            subject,
            FAIL,
            "No cached endpoint or CA: Lifeline cannot reach the cluster",
            cluster_pk=cluster.cluster_pk,
        )
    target = cluster.target
    tokens = token_cache(clients)
    try:
        token = tokens.get(target.region, target.iam_cluster_id).token
    except Exception as exc:
        return Result(
            "iam_refused",
            subject,
            CONFIRM,
            "No IAM token could be made from this dashboard, so the cluster's refusal cannot be seen: "
            "confirm that kubectl with an IAM token fails",
            (f"token: {describe(exc)}",),
            cluster.cluster_pk,
        )
    result = probes.probe_self_review(
        target.endpoint,
        probes.cluster_context(target.ca_pem),
        timeout,
        kind=probes.KUBE_IAM,
        target=subject,
        token=token,
    )
    tokens.forget(target.region, target.iam_cluster_id)  # a drill wants a fresh answer every round
    evidence = (
        f"SelfSubjectReview with an EKS IAM token at {target.endpoint}: {result.result} ({result.detail})",
    )
    if result.result == probes.REJECTED:
        return Result(
            "iam_refused",
            subject,
            PASS,
            "The cluster refuses IAM tokens (401), as expected",
            evidence,
            cluster.cluster_pk,
        )
    if result.result == probes.OK:
        return Result(
            "iam_refused",
            subject,
            FAIL,
            f"IAM authentication still works ({result.detail}): the cluster still reaches STS, "
            "so the Outpost is not cut off",
            evidence,
            cluster.cluster_pk,
        )
    return Result(
        "iam_refused",
        subject,
        FAIL,
        f"The cluster API did not answer: {result.detail}",
        evidence,
        cluster.cluster_pk,
    )


def _paths(cluster: ClusterPlan, credential: KeyedCredential) -> list[tuple[str, str, str | None]]:
    """(label, server, tls-server-name) for every way the credential's bundle reaches the cluster."""
    assert cluster.target is not None
    endpoint = cluster.target.endpoint
    paths: list[tuple[str, str, str | None]] = [("endpoint", endpoint, None)]
    host = endpoint_host(endpoint) or ""
    port = endpoint.rsplit(":", 1)[1].rstrip("/") if endpoint.count(":") >= 2 else "443"
    for ip in credential.control_plane_ips:
        address = f"[{ip}]" if ":" in ip else ip
        paths.append((f"IP {ip} (tls-server-name {host})", f"https://{address}:{port}", host or None))
    return paths


def _read_as(
    server: str, ca_pem: str, auth: KubeAuth, tls_server_name: str | None, timeout: float
) -> tuple[str, int]:
    """(username the server saw, namespaces readable) or a KubeError/exception."""
    connection = connect(server, ca_pem, auth, tls_server_name=tls_server_name, timeout=timeout)
    try:
        who = connection.whoami()
        page = connection.list_objects("v1", "namespaces", limit=50)
        return who.username, len(page.items)
    finally:
        connection.close()


def check_breakglass(cluster: ClusterPlan, timeout: float) -> list[Result]:
    """Every valid break-glass credential, through the endpoint and each control-plane IP."""
    pk = cluster.cluster_pk
    if cluster.target is None:
        return [
            Result(
                "breakglass",
                f"{cluster.name}",
                FAIL,
                "No cached endpoint or CA for the cluster",
                cluster_pk=pk,
            )
        ]
    if not cluster.credentials:
        return [
            Result(
                "breakglass",
                f"{cluster.name}: no valid credential",
                FAIL,
                "No valid break-glass credential for this cluster: nobody could sign in once IAM is refused. "
                "Issue one on the Emergency access page.",
                cluster_pk=pk,
            )
        ]
    results = []
    for credential in cluster.credentials:
        base = f"{cluster.name} #{credential.credential_id} {credential.username}"
        if credential.key_pem is None:
            results.append(
                Result(
                    "breakglass",
                    base,
                    CONFIRM,
                    "The key is on its owner's machine (uploaded CSR): "
                    "its owner confirms they signed in with it",
                    cluster_pk=pk,
                )
            )
            continue
        auth = KubeAuth.x509(credential.certificate_pem, credential.key_pem.decode())
        for label, server, server_name in _paths(cluster, credential):
            subject = f"{base} via {label}"
            where = f"{server}" + (f" (tls-server-name {server_name})" if server_name else "")
            try:
                user, count = _read_as(server, cluster.target.ca_pem, auth, server_name, timeout)
            except Exception as exc:
                text = describe(exc)
                status = exc.status if isinstance(exc, KubeError) else None
                results.append(
                    Result(
                        "breakglass",
                        subject,
                        FAIL,
                        _path_failure(status, text, credential, server_name or server),
                        (f"{where}: {text}",),
                        pk,
                    )
                )
                continue
            if user != credential.username:
                results.append(
                    Result(
                        "breakglass",
                        subject,
                        FAIL,
                        f"The cluster sees the certificate as {user!r}",
                        (where,),
                        pk,
                    )
                )
                continue
            results.append(
                Result(
                    "breakglass",
                    subject,
                    PASS,
                    f"Signed in as {user} and read {count} namespaces",
                    (where,),
                    pk,
                )
            )
    return results


def _path_failure(status: int | None, text: str, credential: KeyedCredential, name: str) -> str:
    """Why a path failed, in the words an operator acts on."""
    if status == 403:
        return (
            f"The certificate is accepted but reads are refused (403): is ClusterRoleBinding "
            f"{credential.binding_name} (ClusterRole {credential.cluster_role}) still there?"
        )
    if status == 401:
        return "The cluster refuses the certificate (401): expired, or signed by another CA"
    lowered = text.lower()
    if "mismatch" in lowered or "doesn't match" in lowered or "not valid for" in lowered:
        return f"The server certificate does not name {name} (SAN mismatch): kubectl would refuse it too"
    return f"TLS or network failure: {text}"


def _lifeline_connection(cluster: ClusterPlan, timeout: float) -> KubeConnection:
    assert cluster.target is not None and cluster.identity is not None
    return connect(cluster.target.endpoint, cluster.target.ca_pem, cluster.identity[0], timeout=timeout)


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pod_key(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _stuck_reason(pod: dict[str, Any]) -> str | None:
    """Why a pod cannot start because of the disconnect (EBS volume, image pull), else None."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_FAILURES:
            return f"image cannot be pulled ({waiting.get('reason')})"
    for condition in status.get("conditions") or []:
        if "EBS" in str(condition.get("message") or ""):
            return "waiting for an EBS volume"
    return None


def check_cluster_reads(cluster: ClusterPlan, timeout: float, items: Iterable[str]) -> list[Result]:
    """Lifeline's own x509 reads, nodes and workloads against the first round, and readiness's
    predictions against what the pods show: one connection for the three."""
    wanted = set(items)
    pk = cluster.cluster_pk
    out: list[Result] = []
    if cluster.target is None or cluster.identity is None:
        why = cluster.identity_missing if cluster.target is not None else "no cached endpoint or CA"
        for item in ("lifeline_reads", "nodes_workloads", "predictions"):
            if item in wanted:
                out.append(
                    Result(
                        item,
                        cluster.name,
                        FAIL,
                        f"Lifeline has no x509 identity that reaches the cluster: {why}",
                        cluster_pk=pk,
                    )
                )
        return out
    source = cluster.identity[1]
    nodes: list[dict[str, Any]] | None = None
    nodes_error = ""
    try:
        with _lifeline_connection(cluster, timeout) as connection:
            who = connection.whoami()
            try:
                nodes = list(connection.iter_objects("v1", "nodes"))
            except KubeError as exc:
                if exc.status != 403:
                    raise
                nodes_error = str(exc)
            pods = list(connection.iter_objects("v1", "pods"))
    except Exception as exc:
        for item in ("lifeline_reads", "nodes_workloads", "predictions"):
            if item in wanted:
                summary = f"Reads with Lifeline's x509 identity ({source}) fail: {describe(exc)}"
                out.append(Result(item, cluster.name, FAIL, summary, cluster_pk=pk))
        return out
    if "lifeline_reads" in wanted:
        if nodes is None:
            summary = (
                f"{who.username} is accepted but may not list nodes: bind it to a ClusterRole that may "
                "get and list nodes (the `view` role does not)"
            )
            out.append(
                Result(
                    "lifeline_reads", cluster.name, FAIL, summary, (f"identity: {source}", nodes_error), pk
                )
            )
        else:
            summary = f"kubectl get nodes equivalent: {len(nodes)} nodes read as {who.username}"
            out.append(
                Result(
                    "lifeline_reads",
                    cluster.name,
                    PASS,
                    summary,
                    (f"identity: {source}", f"{len(pods)} pods listed"),
                    pk,
                )
            )
    running = sorted(_pod_key(p) for p in pods if (p.get("status") or {}).get("phase") == "Running")
    if "nodes_workloads" in wanted:
        out.append(_compare_nodes_workloads(cluster, nodes, running))
    if "predictions" in wanted:
        out.append(_compare_predictions(cluster, pods))
    return out


def _compare_nodes_workloads(
    cluster: ClusterPlan, nodes: list[dict[str, Any]] | None, running: list[str]
) -> Result:
    """Nodes still Ready and pods still running, against what the first round saw."""
    pk = cluster.cluster_pk
    ready = sorted(str((n.get("metadata") or {}).get("name")) for n in nodes or [] if _ready(n))
    baseline = cluster.baseline or {"nodes": ready, "pods": running}
    lost_nodes = sorted(set(baseline.get("nodes", [])) - set(ready)) if nodes is not None else []
    lost_pods = sorted(set(baseline.get("pods", [])) - set(running))
    evidence = (
        f"Ready nodes: {len(ready) if nodes is not None else 'not readable'} "
        f"(at the first check: {len(baseline.get('nodes', []))})",
        f"Running pods: {len(running)} (at the first check: {len(baseline.get('pods', []))})",
    )
    parts = [f"nodes no longer Ready: {', '.join(lost_nodes)}"] if lost_nodes else []
    if lost_pods:
        parts.append(f"pods no longer running: {', '.join(lost_pods[:10])}")
    if parts:
        return Result("nodes_workloads", cluster.name, FAIL, "; ".join(parts), evidence, pk, baseline)
    if nodes is None:
        summary = (
            "Running pods stay up; Lifeline may not read nodes: confirm they stay Ready (kubectl get nodes)"
        )
        return Result("nodes_workloads", cluster.name, CONFIRM, summary, evidence, pk, baseline)
    summary = "Every node stays Ready and every running pod stays up"
    return Result("nodes_workloads", cluster.name, PASS, summary, evidence, pk, baseline)


def _predicted_for(pod_key: str, predicted: Iterable[str]) -> str | None:
    namespace, name = pod_key.split("/", 1)
    for ref in predicted:
        parts = ref.split("/")
        if len(parts) != 3 or parts[1] != namespace:
            continue
        if name == parts[2] or name.startswith(f"{parts[2]}-"):
            return ref
    return None


def _compare_predictions(cluster: ClusterPlan, pods: list[dict[str, Any]]) -> Result:
    stuck = {_pod_key(p): reason for p in pods if (reason := _stuck_reason(p))}
    matched, surprises = [], []
    seen_refs = set()
    for key, reason in sorted(stuck.items()):
        ref = _predicted_for(key, cluster.predicted)
        if ref is None:
            surprises.append(f"{key}: {reason}")
        else:
            seen_refs.add(ref)
            matched.append(f"{key}: {reason} (predicted by {ref})")
    unseen = [ref for ref in cluster.predicted if ref not in seen_refs]
    evidence = tuple(
        [f"predicted and observed: {m}" for m in matched]
        + [f"predicted, not observable yet (no pod of it had to start): {r}" for r in unseen]
        + [f"observed, not predicted: {s}" for s in surprises]
    ) or ("nothing predicted, nothing observed",)
    if surprises:
        return Result(
            "predictions",
            cluster.name,
            FAIL,
            f"{len(surprises)} pod(s) cannot start and readiness did not predict it",
            evidence,
            cluster.cluster_pk,
        )
    return Result(
        "predictions",
        cluster.name,
        PASS,
        f"{len(matched)} prediction(s) observed, {len(unseen)} not observable, no surprise",
        evidence,
        cluster.cluster_pk,
    )


def person_items(cluster: ClusterPlan, items: Iterable[str]) -> list[Result]:
    texts = {
        "local_dns": "A person confirms the endpoint resolves through local DNS (nslookup on site)",
        "laptop_kubeconfig": "A person confirms they ran kubectl with a break-glass kubeconfig from a laptop",
    }
    return [
        Result(item, cluster.name, CONFIRM, texts[item], cluster_pk=cluster.cluster_pk)
        for item in items
        if item in texts
    ]


def ca_of(certificate_authority: str) -> str:
    return ca_pem_from_data(certificate_authority)
