"""The site probes (issue 13): every LIFELINE_PROBE_INTERVAL_SECONDS, from this dashboard's vantage,
the AWS endpoints of each watched region and each cluster's API (endpoint and control-plane IPs,
IAM and x509 through SelfSubjectReview); then each Outpost's site view, with hysteresis.

An observation that differs from the current state is re-probed after LIFELINE_PROBE_CONFIRM_SECONDS
instead of a whole interval, so a change is confirmed within seconds and one lost packet is not an
incident. Probes run in a bounded thread pool with short timeouts; an unreachable target is
probed less often (back-off, at most every BACKOFF_MAX_CYCLES cycles). Nothing here runs on a web thread.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations import probes
from app.integrations.aws import AwsClients
from app.integrations.kube.identity import token_cache
from app.integrations.kube.kubeconfig import endpoint_host
from app.integrations.kube.types import ca_pem_from_data
from app.jobs import triggers
from app.metrics import PROBE_DURATION
from app.models import Cluster, Outpost
from app.services.connectivity import site
from app.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "probes"
BACKOFF_MAX_CYCLES = 3  # an unreachable target is still probed at least every 3 intervals
RECONCILE_EVERY_CYCLES = 6


@dataclass(frozen=True)
class ClusterProbeTarget:
    pk: int
    name: str
    region: str
    outpost_pk: int | None
    endpoint: str
    ca_pem: str | None
    cluster_uid: str | None
    ips: tuple[str, ...]
    x509: probes.X509Pair | None
    x509_missing: str


@dataclass(frozen=True)
class Targets:
    regions: tuple[str, ...]
    clusters: tuple[ClusterProbeTarget, ...]
    # Outposts that have at least one cluster with an endpoint (only those have a site view).
    outposts: dict[int, tuple[int, ...]]
    outpost_regions: dict[int, str]


@dataclass
class Runner:
    """What a probe process keeps between cycles: TLS contexts, back-off counters, the cycle count."""

    settings: Settings
    clients: AwsClients
    contexts: dict[tuple[str, str], ssl.SSLContext] = field(default_factory=dict)
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    last: dict[tuple[str, str], site.Located] = field(default_factory=dict)
    cycles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runner:
        return cls(
            settings, probes.probe_clients(AwsClients.from_settings(settings), settings.probe_timeout_seconds)
        )

    def context(self, ca_pem: str, x509: probes.X509Pair | None = None) -> ssl.SSLContext:
        key = (ca_pem, x509.cert_pem if x509 else "")
        with self.lock:
            found = self.contexts.get(key)
        if found is None:
            found = probes.cluster_context(ca_pem, x509)
            with self.lock:
                if len(self.contexts) > 1000:
                    self.contexts.clear()
                self.contexts[key] = found
        return found


# ---------------------------------------------------------------- targets


_kubeconfigs: dict[Path, tuple[float, probes.X509Pair | None]] = {}


def _x509_for(
    session: Session, settings: Settings, vault: Any, cluster: Cluster
) -> tuple[probes.X509Pair | None, str]:
    """Lifeline's own x509 identity for the cluster, chosen as the readiness poller chooses it (its
    reader identity, its fallback credential, else
    `<LIFELINE_READINESS_X509_KUBECONFIG_DIR>/<cluster>.yaml`); kubeconfig files are parsed again only
    when they change (parsing YAML every 10 s would dominate the cost)."""
    from app.jobs.readiness import NO_X509, kubeconfig_identity
    from app.services.credentials.access import fallback_identity
    from app.services.credentials.identities import READER, own_identity

    try:
        reader = own_identity(session, vault, cluster.id, READER)
        own = fallback_identity(session, vault, cluster.id) if reader is None else None
    except Exception as exc:  # a wrong data key must not stop the IAM probes
        log.warning("own x509 identity of %s unavailable: %s", cluster.name, exc)
        reader = own = None
    if reader is not None and reader.auth.cert_pem and reader.auth.key_pem:
        return probes.X509Pair(reader.auth.cert_pem, reader.auth.key_pem), NO_X509
    if own is not None:
        return probes.X509Pair(own.certificate_pem, own.key_pem.decode()), NO_X509
    directory = settings.readiness_x509_kubeconfig_dir
    path = Path(directory) / f"{cluster.name}.yaml" if directory else None
    if path is None or not path.is_file():
        return None, NO_X509
    mtime = path.stat().st_mtime
    cached = _kubeconfigs.get(path)
    if cached is None or cached[0] != mtime:
        try:
            identity = kubeconfig_identity(path)
        except Exception as exc:
            return None, f"{path}: {exc}"
        pair = None
        if identity is not None and identity.auth.cert_pem and identity.auth.key_pem:
            pair = probes.X509Pair(identity.auth.cert_pem, identity.auth.key_pem)
        cached = _kubeconfigs[path] = (mtime, pair)
    return cached[1], f"{path}: its current context has no x509 user"


def load_targets(session: Session, settings: Settings) -> Targets:
    """Everything the probes need, read before any network call (one short transaction)."""
    from app.integrations.vault import vault_or_none
    from app.services.readiness import records

    vault = vault_or_none(
        settings.data_key.get_secret_value() if settings.data_key else None, settings.data_key_file
    )
    regions = set(settings.aws_regions)
    regions.update(session.scalars(select(Outpost.region).distinct()))
    outpost_regions = {pk: region for pk, region in session.execute(select(Outpost.id, Outpost.region))}
    clusters = []
    by_outpost: dict[int, list[int]] = defaultdict(list)
    for cluster in session.scalars(
        select(Cluster).where(Cluster.endpoint.is_not(None)).order_by(Cluster.name)
    ):
        regions.add(cluster.region)
        state = records.get_state(session, cluster)
        ips = tuple(str(ip) for ip in ((state.facts or {}).get("eni_ips") or ())) if state else ()
        x509, missing = _x509_for(session, settings, vault, cluster)
        try:
            ca_pem = (
                ca_pem_from_data(cluster.certificate_authority) if cluster.certificate_authority else None
            )
        except Exception:
            ca_pem = None
        clusters.append(
            ClusterProbeTarget(
                cluster.id,
                cluster.name,
                cluster.region,
                cluster.outpost_pk,
                str(cluster.endpoint),
                ca_pem,
                cluster.cluster_uid,
                ips if settings.probe_control_plane_ips else (),
                x509,
                missing,
            )
        )
        if cluster.outpost_pk is not None:
            by_outpost[cluster.outpost_pk].append(cluster.id)
    return Targets(
        tuple(sorted(regions)),
        tuple(clusters),
        {pk: tuple(members) for pk, members in by_outpost.items()},
        outpost_regions,
    )


# ---------------------------------------------------------------- probing


def _cluster_jobs(
    runner: Runner, target: ClusterProbeTarget
) -> list[tuple[tuple[str, str], Callable[[], site.Located]]]:
    timeout = runner.settings.probe_timeout_seconds
    name = target.name

    def located(result: probes.ProbeResult) -> site.Located:
        return site.Located(result, target.region, target.pk)

    if not target.ca_pem:

        def no_ca() -> site.Located:
            return located(
                probes.not_tried(probes.KUBE_LIVEZ, name, "no cluster CA known yet (DescribeCluster)")
            )

        return [((probes.KUBE_LIVEZ, name), no_ca)]
    ca_pem = target.ca_pem
    jobs: list[tuple[tuple[str, str], Callable[[], site.Located]]] = []

    def livez() -> site.Located:
        return located(probes.probe_livez(target.endpoint, runner.context(ca_pem), timeout, target=name))

    def iam() -> site.Located:
        tokens = token_cache(runner.clients)
        cluster_id = target.cluster_uid or target.name
        result = None
        # A refused token is tried once more freshly signed: a stale cached one (rotated
        # credentials) must not read as a disconnect.
        for _attempt in range(2):
            try:
                token = tokens.get(target.region, cluster_id).token
            except Exception as exc:
                why = f"no EKS token: {type(exc).__name__}: {exc}"
                return located(probes.not_tried(probes.KUBE_IAM, name, why))
            result = probes.probe_self_review(
                target.endpoint,
                runner.context(ca_pem),
                timeout,
                kind=probes.KUBE_IAM,
                target=name,
                token=token,
            )
            if result.result != probes.REJECTED:
                break
            tokens.forget(target.region, cluster_id)
        assert result is not None
        return located(result)

    def x509() -> site.Located:
        if target.x509 is None:
            return located(probes.not_tried(probes.KUBE_X509, name, target.x509_missing))
        return located(
            probes.probe_self_review(
                target.endpoint,
                runner.context(ca_pem, target.x509),
                timeout,
                kind=probes.KUBE_X509,
                target=name,
            )
        )

    jobs += [
        ((probes.KUBE_LIVEZ, name), livez),
        ((probes.KUBE_IAM, name), iam),
        ((probes.KUBE_X509, name), x509),
    ]
    host = endpoint_host(target.endpoint) or ""
    for ip in target.ips:
        if ip == host:
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            continue

        def by_ip(ip: str = ip) -> site.Located:
            return located(
                probes.probe_livez(
                    target.endpoint,
                    runner.context(ca_pem),
                    timeout,
                    kind=probes.KUBE_IP_LIVEZ,
                    target=f"{name}@{ip}",
                    connect_to=ip,
                )
            )

        jobs.append(((probes.KUBE_IP_LIVEZ, f"{name}@{ip}"), by_ip))
    return jobs


def _aws_jobs(
    runner: Runner, regions: Sequence[str]
) -> list[tuple[tuple[str, str], Callable[[], site.Located]]]:
    jobs: list[tuple[tuple[str, str], Callable[[], site.Located]]] = []
    for region in regions:
        for kind in probes.AWS_KINDS:

            def call(kind: str = kind, region: str = region) -> site.Located:
                return site.Located(probes.probe_aws(kind, region, runner.clients), region)

            jobs.append(((kind, f"{probes.SERVICE_HOSTS[kind]}.{region}"), call))
    return jobs


def _run(
    runner: Runner, jobs: Sequence[tuple[tuple[str, str], Callable[[], site.Located]]], *, backoff: bool
) -> list[site.Located]:
    """Run probes in the bounded pool; with `backoff`, skip targets that keep being unreachable
    on some cycles (their last result stands)."""
    chosen = []
    for key, call in jobs:
        failures = runner.failures.get(key, 0)
        if backoff and failures >= 2 and key in runner.last:
            every = min(2 ** (failures - 1), BACKOFF_MAX_CYCLES)
            if runner.cycles % every:
                continue
        chosen.append((key, call))
    if not chosen:
        return []
    with ThreadPoolExecutor(
        max_workers=runner.settings.probe_concurrency, thread_name_prefix="probe"
    ) as pool:
        done = list(pool.map(lambda item: (item[0], item[1]()), chosen))
    results = []
    for key, located in done:
        r = located.result
        PROBE_DURATION.labels(kind=r.kind).observe(r.latency_seconds or 0.0)
        runner.failures[key] = runner.failures.get(key, 0) + 1 if r.result in probes.UNREACHED else 0
        runner.last[key] = located
        results.append(located)
    return results


def _observations(runner: Runner, targets: Targets, outposts: Sequence[int]) -> dict[int, site.Observation]:
    by_cluster: dict[int, dict[str, probes.ProbeResult]] = defaultdict(dict)
    aws_up: dict[str, bool] = {}
    for (kind, _target), located in runner.last.items():
        if located.cluster_pk is not None:
            by_cluster[located.cluster_pk][kind] = located.result
        elif kind in probes.AWS_KINDS and located.region:
            aws_up[located.region] = aws_up.get(located.region, False) or located.result.up
    names = {c.pk: c.name for c in targets.clusters}
    found = {}
    for pk in outposts:
        members = {names[c]: by_cluster.get(c, {}) for c in targets.outposts.get(pk, ())}
        found[pk] = site.observe(members, aws_up.get(targets.outpost_regions.get(pk, "")))
    return found


@dataclass(frozen=True)
class CycleResult:
    probes: int
    changed: frozenset[int]
    confirmations: int
    seconds: float


def probe_cycle(
    settings: Settings,
    session_factory: sessionmaker[Session],
    runner: Runner,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CycleResult:
    """One cycle: probe everything, update site views; confirm pending changes quickly."""
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    started = time.monotonic()
    with session_scope(session_factory) as session:
        targets = load_targets(session, settings)
    # Targets that left the fleet must not keep feeding observations.
    keys = {key for key, _ in _aws_jobs(runner, targets.regions)}
    cluster_jobs = {c.pk: _cluster_jobs(runner, c) for c in targets.clusters}
    keys.update(key for jobs in cluster_jobs.values() for key, _ in jobs)
    for stale in [key for key in runner.last if key not in keys]:
        runner.last.pop(stale, None)
    all_jobs = _aws_jobs(runner, targets.regions) + [j for jobs in cluster_jobs.values() for j in jobs]
    results = _run(runner, all_jobs, backoff=True)
    count = len(results)
    changed, pending = _store(
        settings, session_factory, runner, targets, results, list(targets.outposts), clock()
    )
    confirmations = 0
    while pending and settings.probe_confirm_seconds > 0 and confirmations < settings.probe_hysteresis - 1:
        sleep(settings.probe_confirm_seconds)
        confirmations += 1
        regions = sorted({targets.outpost_regions.get(pk, "") for pk in pending} - {""})
        again = _aws_jobs(runner, regions) + [
            j for pk in pending for c in targets.outposts.get(pk, ()) for j in cluster_jobs.get(c, [])
        ]
        results = _run(runner, again, backoff=False)
        count += len(results)
        more, pending = _store(settings, session_factory, runner, targets, results, sorted(pending), clock())
        changed |= more
    if changed:
        triggers.outposts_changed(settings, session_factory, changed, "site-probe verdict changed")
    runner.cycles += 1
    if runner.cycles % RECONCILE_EVERY_CYCLES == 1:
        with session_scope(session_factory) as session:
            site.reconcile_stretches(session, settings.vantage, clock())
    return CycleResult(count, frozenset(changed), confirmations, time.monotonic() - started)


def _store(
    settings: Settings,
    session_factory: sessionmaker[Session],
    runner: Runner,
    targets: Targets,
    results: Sequence[site.Located],
    outposts: Sequence[int],
    now: dt.datetime,
) -> tuple[set[int], set[int]]:
    observations = _observations(runner, targets, outposts)
    for attempt in range(3):
        try:
            with session_scope(session_factory) as session:
                site.record_results(session, settings.vantage, results, now)
                changed, pending = site.update_views(
                    session, settings.vantage, observations, settings.probe_hysteresis, now
                )
            break
        except OperationalError as exc:
            # SQLite: a transaction that read before another writer committed cannot write
            # ("database is locked" at once, busy_timeout does not apply); a new one can.
            if "locked" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))
    for pk in changed:
        log.info("site view from %s: Outpost %s is now %s", settings.vantage, pk, observations[pk].state)
    return changed, pending


_runners: dict[int, Runner] = {}


def runner_for(settings: Settings) -> Runner:
    """One runner per Settings object for the scheduler's lifetime (keeps contexts and back-off)."""
    return _runners.setdefault(id(settings), Runner.from_settings(settings))


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """One probe cycle (the scheduler's job; `lifeline poll-once` runs it too)."""
    if not settings.probes_enabled:
        return
    result = probe_cycle(settings, session_factory, runner_for(settings))
    log.debug("probes: %d results, %d changes in %.2f s", result.probes, len(result.changed), result.seconds)


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """Probe every LIFELINE_PROBE_INTERVAL_SECONDS, the first time right away (unless disabled)."""
    if not settings.probes_enabled:
        return
    scheduler.add_job(
        run_once,
        "interval",
        seconds=settings.probe_interval_seconds,
        args=(settings, session_factory),
        id=JOB_ID,
        name="site probes",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
