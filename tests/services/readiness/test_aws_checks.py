"""Checks that read AWS facts and Lifeline's records: pass and fail cases, horizon, exemptions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from app.services.readiness.catalogue import AttestationFact, ExemptionRule, apply_exemptions, evaluate, score
from app.services.readiness.model import (
    AlarmFact,
    AwsFacts,
    CertificateFact,
    CheckContext,
    ClusterFacts,
    ClusterSnapshot,
    CredentialFact,
    Finding,
    Severity,
    Status,
)
from app.services.readiness.snapshot import snapshot_from_objects
from tests.factories import LOCAL_REGISTRY, failing_cluster, ready_cluster

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
CERT_ARN = "arn:aws:acm:us-west-2:123456789012:certificate/11111111-2222-3333-4444-555555555555"
ENDPOINT = "https://abc123.gr7.us-west-2.eks.amazonaws.com"


def alarm(**overrides: object) -> AlarmFact:
    values: dict[str, object] = dict(
        name="op-1-connected",
        namespace="AWS/Outposts",
        metric_name="ConnectedStatus",
        dimensions={"OutpostId": "op-0123456789abcdef0"},
        comparison="LessThanThreshold",
        threshold=1.0,
        statistic="Average",
        period=60,
        evaluation_periods=3,
        treat_missing_data="breaching",
        actions=("arn:aws:sns:us-west-2:123456789012:oncall",),
        state="OK",
    )
    values.update(overrides)
    return AlarmFact(**values)  # type: ignore[arg-type]


def healthy_facts() -> AwsFacts:
    return AwsFacts(
        cluster=ClusterFacts(
            status="ACTIVE",
            endpoint=ENDPOINT,
            cluster_uid="uid-1",
            control_plane_instance_type="m5.xlarge",
            outpost_id="op-0123456789abcdef0",
        ),
        eni_ips=("127.0.1.10", "127.0.1.11", "127.0.1.12"),
        resolved_ips=("127.0.1.11", "127.0.1.10", "127.0.1.12"),
        alarms=(alarm(),),
        certificates={
            CERT_ARN: CertificateFact(CERT_ARN, "shop.example", NOW + dt.timedelta(days=90), "ISSUED")
        },
        control_plane_slots_available=1,
        credentials=(
            CredentialFact("oncall-breakglass", "breakglass", NOW + dt.timedelta(days=30), verified=True),
            CredentialFact("lifeline-view", "fallback", NOW + dt.timedelta(days=30), verified=True),
        ),
    )


def run(facts: AwsFacts, objects: list | None = None, horizon: int = 72) -> dict[str, Finding]:
    base = snapshot_from_objects(objects or ready_cluster(), "outpost-a")
    snapshot = ClusterSnapshot("outpost-a", base.objects, base.pods, live=True, aws=facts, collected_at=NOW)
    context = CheckContext(horizon_hours=horizon, local_registries=(LOCAL_REGISTRY,), now=NOW)
    return {f.check_id: f for f in evaluate(snapshot, context)}


def test_healthy_facts_pass_every_check() -> None:
    findings = run(healthy_facts())
    not_passing = {k: f.status for k, f in findings.items() if f.status != Status.passed}
    # Only attestations remain: nobody has confirmed them.
    assert not_passing == {
        "etcd-backups": Status.warn,
        "local-dns-servers": Status.warn,
        "local-registry": Status.warn,
        "disconnect-drill": Status.warn,  # no drill has run yet
    }
    assert "127.0.1.10 abc123.gr7.us-west-2.eks.amazonaws.com" in findings["endpoint-dns"].summary


@pytest.mark.parametrize(
    ("check_id", "change", "status"),
    [
        ("breakglass-credential", {"credentials": ()}, Status.fail),
        (
            "fallback-identity",
            {"credentials": (CredentialFact("b", "breakglass", NOW + dt.timedelta(days=9), True),)},
            Status.fail,
        ),
        ("endpoint-dns", {"resolved_ips": ("127.9.9.9",)}, Status.fail),
        ("endpoint-dns", {"resolved_ips": None, "resolve_error": "NXDOMAIN"}, Status.fail),
        ("connected-status-alarm", {"alarms": ()}, Status.fail),
        (
            "connected-status-alarm",
            {"alarms": (alarm(actions=(), treat_missing_data="notBreaching"),)},
            Status.warn,
        ),
        (
            "cluster-health",
            {
                "cluster": ClusterFacts(
                    status="UPDATING",
                    health_issues=(
                        {
                            "code": "ResourceLimitExceeded",
                            "message": "not enough capacity",
                            "resourceIds": ["i-1"],
                        },
                    ),
                )
            },
            Status.fail,
        ),
        ("control-plane-capacity", {"control_plane_slots_available": 0}, Status.fail),
    ],
)
def test_aws_checks_fail(check_id: str, change: dict[str, object], status: Status) -> None:
    facts = replace(healthy_facts(), **change)  # type: ignore[arg-type]
    if check_id == "control-plane-capacity":
        assert run(healthy_facts())[check_id].status == Status.passed
    finding = run(facts)[check_id]
    assert finding.status == status, finding.summary
    assert finding.evidence or status == Status.fail


def test_cluster_stuck_updating() -> None:
    stuck = ClusterFacts(status="UPDATING", status_since=NOW - dt.timedelta(hours=30), endpoint=ENDPOINT)
    finding = run(replace(healthy_facts(), cluster=stuck))["cluster-health"]
    assert finding.status == Status.fail and "UPDATING for 30 h" in finding.summary


def test_unknown_without_aws() -> None:
    findings = run(AwsFacts())
    for check_id in (
        "endpoint-dns",
        "cluster-health",
        "control-plane-capacity",
        "connected-status-alarm",
        "breakglass-credential",
        "fallback-identity",
    ):
        assert findings[check_id].status == Status.unknown


def test_horizon_scales_certificate_and_credential_findings() -> None:
    facts = replace(
        healthy_facts(),
        certificates={CERT_ARN: CertificateFact(CERT_ARN, "shop", NOW + dt.timedelta(days=10), "ISSUED")},
    )
    objects = failing_cluster("alb-acm-certificates")
    # 10 days left: fine for a 1-day horizon, a failure for a 30-day one.
    assert run(facts, objects, horizon=24)["alb-acm-certificates"].status == Status.passed
    assert run(facts, objects, horizon=24 * 7)["alb-acm-certificates"].status == Status.warn
    long = run(facts, objects, horizon=24 * 30)["alb-acm-certificates"]
    assert long.status == Status.fail and long.severity == Severity.high  # a month raises medium to high
    short = run(healthy_facts(), horizon=24 * 40)["breakglass-credential"]
    assert short.status == Status.fail and short.severity == Severity.critical


def test_exemptions_accept_a_whole_check_or_one_object() -> None:
    objects = failing_cluster("iam-dependent-workloads")
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "reporter",
                "namespace": "shop",
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/reporter"},
            },
        }
    )
    findings = list(run(healthy_facts(), objects).values())
    rule = ExemptionRule(
        "iam-dependent-workloads",
        "",
        "uploader moves to static keys in Q1",
        "alice",
        NOW + dt.timedelta(days=30),
    )
    accepted = {f.check_id: f for f in apply_exemptions(findings, [rule], NOW)}["iam-dependent-workloads"]
    assert accepted.status == Status.accepted and accepted.exemption
    assert accepted.exemption["author"] == "alice"
    assert score(apply_exemptions(findings, [rule], NOW)) > score(findings)
    expired = replace(rule, expires_at=NOW - dt.timedelta(seconds=1))
    again = {f.check_id: f for f in apply_exemptions(findings, [expired], NOW)}["iam-dependent-workloads"]
    assert again.status == Status.fail
    one = replace(rule, target="Deployment/shop/uploader")
    partial = {f.check_id: f for f in apply_exemptions(findings, [one], NOW)}["iam-dependent-workloads"]
    assert partial.status == Status.fail  # the unused annotated ServiceAccount is still there
    assert [e.ref for e in partial.evidence] == ["ServiceAccount/shop/reporter"]
    both = [one, replace(rule, target="ServiceAccount/shop/reporter")]
    assert {f.check_id: f for f in apply_exemptions(findings, both, NOW)}[
        "iam-dependent-workloads"
    ].status == (Status.accepted)


def test_attestations_pass_until_they_expire() -> None:
    base = snapshot_from_objects(ready_cluster())
    context = CheckContext(now=NOW)
    fact = AttestationFact(
        "etcd-backups",
        "nightly etcdctl snapshots to the NAS",
        "bob",
        NOW - dt.timedelta(days=1),
        NOW + dt.timedelta(days=29),
    )
    findings = {f.check_id: f for f in evaluate(base, context, attestations=[fact])}
    assert findings["etcd-backups"].status == Status.passed
    assert findings["local-registry"].status == Status.warn
    old = replace(fact, expires_at=NOW - dt.timedelta(hours=1))
    findings = {f.check_id: f for f in evaluate(base, context, attestations=[old])}
    assert findings["etcd-backups"].status == Status.warn and "expired" in findings["etcd-backups"].summary
