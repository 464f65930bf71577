"""The cluster poller against the simulated API server and moto: every check through a live poll,
IAM failing while x509 works, an unreachable cluster, one failure not stopping others, 5,000 pods."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import create_db_engine, make_session_factory, session_scope
from app.integrations.kube.client import KubeAuth, connect
from app.jobs import readiness as job
from app.models import Cluster, PollRun
from app.models.readiness import ClusterReadiness, ReadinessSample
from app.services.readiness.catalogue import evaluate
from app.services.readiness.model import CheckContext, Finding, Status
from tests.conftest import DatabaseServer
from tests.factories import (
    FAILING,
    LOCAL_REGISTRY,
    MANIFEST_CHECKS,
    add_credential,
    aws_side,
    failing_cluster,
    pod,
    ready_cluster,
)
from tests.fixtures.readiness import PolledCluster

Make = Callable[..., PolledCluster]


def poll(
    target: PolledCluster, session: Session, session_factory: sessionmaker[Session]
) -> dict[str, Finding]:
    outcomes = job.poll_clusters(target.settings, session_factory)
    assert outcomes, "the cluster was polled"
    session.expire_all()
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None
    return {item["check_id"]: Finding.from_dict(item) for item in state.findings}


def with_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ready cluster with running pods: 3 web replicas spread over the nodes."""
    pods = [
        pod(
            f"web-5c7f-{i}",
            "shop",
            f"node-{i}",
            "registry.local:5000/shop/web:1.2",
            owner=("ReplicaSet", "web-5c7f"),
            cpu="250m",
            memory="256Mi",
            labels={"app": "web"},
        )
        for i in range(1, 4)
    ]
    return objects + pods


def test_ready_cluster_passes_every_check_live(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session]
) -> None:
    target = polled_cluster(with_pods(ready_cluster()), readiness_poll_concurrency=1)
    findings = poll(target, session, session_factory)
    not_passing = {k: (f.status.value, f.summary) for k, f in findings.items() if f.status != Status.passed}
    assert not_passing == {}
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None and state.auth_path == "iam" and state.reachable
    assert state.score is not None and state.score < 100  # attestations are still missing
    assert state.facts["objects"]["Pod"] == 3 and state.facts["eni_ips"] == ["127.0.0.1"]
    assert {n["name"] for n in state.nodes} == {"node-1", "node-2", "node-3"}
    assert next(n for n in state.nodes if n["name"] == "node-1")["cpu_requested"] == 250
    run = session.scalars(select(PollRun).where(PollRun.job == job.JOB)).one()
    assert run.outcome == "ok" and run.requests >= len(job.RESOURCES) - 4 and run.items > 0


@pytest.mark.parametrize("check_id", MANIFEST_CHECKS)
def test_each_check_fails_through_the_simulator(check_id: str, simulated_cluster: Callable[..., Any]) -> None:
    """The failing fixture served by the simulated API server, collected page by page as the poller
    does (the full poll with AWS and the database is covered once above, to keep the suite quick)."""
    sim = simulated_cluster(name=f"sim-{check_id}", manifests=failing_cluster(check_id))
    cert, key = sim.issue_client_certificate("lifeline", ("system:masters",))
    with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key), timeout=10) as conn:
        collected = job.collect(conn, page_size=2)  # tiny pages: every list pages
    snapshot = collected.builder.build(sim.name, live=True)
    context = CheckContext(local_registries=(LOCAL_REGISTRY,))
    findings = {f.check_id: f for f in evaluate(snapshot, context, attestations=None)}
    assert findings[check_id].status.value == FAILING[check_id][1], findings[check_id].summary
    assert findings[check_id].evidence
    ready = simulated_cluster(name=f"ok-{check_id}", manifests=ready_cluster())
    cert, key = ready.issue_client_certificate("lifeline", ("system:masters",))
    with connect(ready.url, ready.ca_pem, KubeAuth.x509(cert, key), timeout=10) as conn:
        snapshot = job.collect(conn, page_size=2).builder.build(ready.name, live=True)
    passing = {f.check_id: f for f in evaluate(snapshot, context, attestations=None)}
    assert passing[check_id].status == Status.passed, passing[check_id].summary


@pytest.mark.parametrize(
    ("check_id", "setup"),
    [
        ("breakglass-credential", {"credentials": False}),
        ("fallback-identity", {"credentials": False}),
        ("connected-status-alarm", {"alarm": False}),
        ("control-plane-capacity", {"slots": 0}),
    ],
)
def test_aws_and_lifeline_checks_fail_live(
    check_id: str,
    setup: dict[str, Any],
    polled_cluster: Make,
    session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    target = polled_cluster(ready_cluster(), readiness_poll_concurrency=1, **setup)
    assert poll(target, session, session_factory)[check_id].status == Status.fail


def test_expiring_breakglass_fails_for_a_long_horizon(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session]
) -> None:
    target = polled_cluster(
        ready_cluster(), credentials=False, readiness_poll_concurrency=1, readiness_horizon_hours=24 * 14
    )
    add_credential(session, target.cluster, "breakglass", 10)
    add_credential(session, target.cluster, "fallback", 60)
    findings = poll(target, session, session_factory)
    assert findings["breakglass-credential"].status == Status.fail
    assert "inside the 336 h disconnect horizon" in findings["breakglass-credential"].summary
    assert findings["fallback-identity"].status == Status.passed


def test_iam_failing_while_x509_works(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The Outpost loses its service link: IAM tokens fail, a `view` x509 kubeconfig still works.

    `view` cannot list nodes or RBAC bindings: those checks say unknown instead of pass."""
    objects = ready_cluster()
    objects.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "lifeline-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "lifeline-readers"}
            ],
        }
    )
    target = polled_cluster(objects, readiness_poll_concurrency=1, kubeconfig_dir=tmp_path)
    kubeconfig = tmp_path / f"{target.sim.name}.yaml"
    target.sim.write_admin_kubeconfig(kubeconfig, user="lifeline", groups=("lifeline-readers",))
    target.sim.disconnect()
    findings = poll(target, session, session_factory)
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None
    assert state.auth_path == "x509" and state.reachable
    assert state.iam_error and state.x509_error is None
    assert state.facts["auth"]["x509"] == "ok"
    assert findings["image-sources"].status == Status.passed  # workloads read through x509
    assert findings["system-masters-binding"].status == Status.unknown
    assert "forbidden" in state.facts["skipped"]["ClusterRoleBinding"]


def test_unreachable_cluster_keeps_its_last_findings(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session]
) -> None:
    target = polled_cluster(ready_cluster(), readiness_poll_concurrency=1)
    poll(target, session, session_factory)
    target.sim.stop()
    findings = poll(target, session, session_factory)
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None
    assert state.reachable is False and state.auth_path == "none"
    assert state.iam_error and state.x509_error and state.last_error
    assert findings["spare-capacity"].status == Status.passed  # the last good evidence stays
    samples = session.scalars(select(ReadinessSample).order_by(ReadinessSample.polled_at)).all()
    assert [s.reachable for s in samples] == [True, False] and samples[1].score is None
    runs = session.scalars(select(PollRun).where(PollRun.job == job.JOB).order_by(PollRun.id)).all()
    assert [r.outcome for r in runs] == ["ok", "error"]


def test_one_failing_cluster_does_not_stop_the_others(
    database_server: DatabaseServer, simulated_cluster: Callable[..., Any], aws_endpoint: str
) -> None:
    """Two clusters polled concurrently on a real database; one points at a dead port."""
    from tests.conftest import free_port, make_settings

    url = database_server.create_migrated("readiness-poll")
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    try:
        good = simulated_cluster(name="good", manifests=ready_cluster())
        aws_side(aws_endpoint, good)
        with session_scope(factory) as session:
            session.add(
                Cluster(
                    name="good",
                    region="us-west-2",
                    cluster_uid=good.cluster_uid,
                    endpoint=good.url,
                    certificate_authority=good.ca_data,
                    status="ACTIVE",
                )
            )
            session.add(
                Cluster(
                    name="dead",
                    region="us-west-2",
                    cluster_uid="dead-uid",
                    endpoint=f"https://127.0.0.1:{free_port()}",
                    certificate_authority=good.ca_data,
                )
            )
        settings = make_settings(
            url,
            aws_endpoint_url=aws_endpoint,
            aws_max_attempts=1,
            readiness_poll_concurrency=2,
            readiness_kube_timeout_seconds=3,
        )
        outcomes = job.poll_clusters(settings, factory)
        assert outcomes == {"us-west-2/good": "ok", "us-west-2/dead": "unreachable"}
        with session_scope(factory) as session:
            runs = {
                r.scope: r.outcome for r in session.scalars(select(PollRun).where(PollRun.job == job.JOB))
            }
            assert runs == {"us-west-2/good": "ok", "us-west-2/dead": "error"}
    finally:
        engine.dispose()


def test_five_thousand_pods_in_bounded_memory(simulated_cluster: Callable[..., Any]) -> None:
    """Pods are listed in pages of 500 and digested as they arrive: the collection's peak memory
    stays well below what holding every pod takes (measured in the same test)."""
    pods = [
        pod(
            f"app{i % 25}-6b9d-{i:05d}",
            f"team-{i % 5}",
            f"node-{i % 3 + 1}",
            "registry.local:5000/app:1",
            owner=("ReplicaSet", f"app{i % 25}-6b9d"),
        )
        for i in range(5000)
    ]
    sim = simulated_cluster(name="big", manifests=ready_cluster() + pods)
    cert, key = sim.issue_client_certificate("reader", ("system:masters",))
    with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key), timeout=30) as conn:
        tracemalloc.start()
        everything = list(conn.iter_objects("v1", "pods", page_size=500))
        _, holding_all = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(everything) == 5000
        del everything
        tracemalloc.start()
        collected = job.collect(conn, page_size=500)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    snapshot = collected.builder.build("big", live=True)
    assert snapshot.pods.total == 5000 and collected.counts["Pod"] == 5000
    assert len(snapshot.pods.groups) <= 26  # grouped by owner and template, not kept per pod
    assert collected.requests >= 10  # 5,000 pods took at least ten pages
    assert peak < holding_all / 2, (peak, holding_all)


def test_job_is_registered_once_per_scheduler(settings: Any, session_factory: sessionmaker[Session]) -> None:
    from app.jobs.scheduler import build_scheduler

    scheduler = build_scheduler(settings, session_factory)
    job_entry = scheduler.get_job("clusters")
    assert job_entry is not None
    assert job_entry.max_instances == 1 and job_entry.coalesce is True
    assert job_entry.trigger.interval.total_seconds() == settings.readiness_poll_interval_seconds


def test_acm_expiry_inside_the_horizon_fails_live(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session], aws_endpoint: str
) -> None:
    """An Ingress on an ACM certificate that expires in 10 days: fine for 3 days, a failure for 14."""
    import datetime as dt

    import boto3
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.internal")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10)).sign(key, hashes.SHA256())
    )  # fmt: skip
    acm = boto3.client("acm", region_name="us-west-2", endpoint_url=aws_endpoint)
    arn = acm.import_certificate(
        Certificate=cert.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )["CertificateArn"]
    objects = failing_cluster("alb-acm-certificates")
    ingress = next(o for o in objects if o["kind"] == "Ingress")
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/certificate-arn"] = arn
    target = polled_cluster(objects, readiness_poll_concurrency=1, readiness_horizon_hours=24 * 14)
    finding = poll(target, session, session_factory)["alb-acm-certificates"]
    assert finding.status == Status.fail, finding.summary
    assert arn in finding.evidence[0].detail and "inside the disconnect horizon" in finding.evidence[0].detail


def test_operator_kubeconfig_with_file_paths_works_for_the_poller(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """An operator kubeconfig naming its certificate, key and CA by path (relative to its folder, as
    kubectl resolves them) is the poller's x509 identity while IAM fails; it used to be ignored."""
    import base64

    import yaml

    target = polled_cluster(ready_cluster(), readiness_poll_concurrency=1, kubeconfig_dir=tmp_path)
    kubeconfig = tmp_path / f"{target.sim.name}.yaml"
    target.sim.write_admin_kubeconfig(kubeconfig, user="lifeline")
    config = yaml.safe_load(kubeconfig.read_text())
    (tmp_path / "pki").mkdir()
    for entry, data_key, file_key, name in (
        (config["users"][0]["user"], "client-certificate-data", "client-certificate", "lifeline.crt"),
        (config["users"][0]["user"], "client-key-data", "client-key", "lifeline.key"),
        (config["clusters"][0]["cluster"], "certificate-authority-data", "certificate-authority", "ca.crt"),
    ):
        (tmp_path / "pki" / name).write_bytes(base64.b64decode(entry.pop(data_key)))
        entry[file_key] = f"pki/{name}"
    kubeconfig.write_text(yaml.safe_dump(config))
    target.sim.disconnect()
    findings = poll(target, session, session_factory)
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None
    assert state.auth_path == "x509" and state.reachable, state.x509_error
    assert state.iam_error and state.x509_error is None
    assert state.facts["auth"]["x509"] == "ok"
    assert findings["image-sources"].status == Status.passed


def test_live_poll_reads_the_config_maps_log_agents_mount(simulated_cluster: Callable[..., Any]) -> None:
    """Where a log agent ships its logs is in the ConfigMap it mounts: a live poll reads those (and
    only those), so Fluent Bit shipping to CloudWatch Logs is not taken for local logging."""
    from tests.services.readiness.test_real_world_shapes import FLUENT_BIT_CLOUDWATCH, log_agent, prometheus

    unrelated = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "dashboards", "namespace": "monitoring"},
        "data": {"big.json": "{}" * 1000},
    }
    manifests = [prometheus(), *log_agent(FLUENT_BIT_CLOUDWATCH, "aws-for-fluent-bit:2.32"), unrelated]
    sim = simulated_cluster(name="logs-live", manifests=manifests)
    cert, key = sim.issue_client_certificate("lifeline", ("system:masters",))
    with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key), timeout=10) as conn:
        collected = job.collect(conn, page_size=50)
    snapshot = collected.builder.build(sim.name, live=True)
    assert [cm["metadata"]["name"] for cm in snapshot.of_kind("ConfigMap")] == ["fluent-bit-config"]
    findings = {f.check_id: f for f in evaluate(snapshot, CheckContext(), attestations=None)}
    observability = findings["local-observability"]
    assert observability.status == Status.warn, observability.summary
    details = " ".join(e.detail for e in observability.evidence)
    assert "cloudwatch_logs" in details and "judged by image" not in details
