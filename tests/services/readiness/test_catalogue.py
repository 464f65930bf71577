"""Every manifest check passes on a ready cluster and fails on its mutation; AWS checks are unknown."""

from __future__ import annotations

import re

import pytest

from app.services.readiness.catalogue import CHECKS, evaluate, score
from app.services.readiness.model import CheckContext, Finding, Status
from app.services.readiness.snapshot import snapshot_from_objects
from app.services.readiness.specs import ATTESTATION_TOPICS, SPECS
from tests.factories import (
    FAILING,
    LOCAL_REGISTRY,
    MANIFEST_CHECKS,
    UNKNOWN_FROM_MANIFESTS,
    failing_cluster,
    ready_cluster,
)

CONTEXT = CheckContext(local_registries=(LOCAL_REGISTRY,))


def by_id(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check_id: f for f in findings}


def test_catalogue_covers_the_issue() -> None:
    expected = {
        "breakglass-credential",
        "system-masters-binding",
        "fallback-identity",
        "endpoint-dns",
        "spare-capacity",
        "image-sources",
        "ebs-workloads",
        "ebs-snapshots",
        "alb-acm-certificates",
        "lb-controller-new-pods",
        "vpc-cni-warm-ips",
        "local-observability",
        "connected-status-alarm",
        "iam-dependent-workloads",
        "unreachable-toleration",
        "cluster-health",
        "control-plane-capacity",
    }
    assert set(CHECKS) == expected
    assert set(SPECS) == expected | set(ATTESTATION_TOPICS)
    assert set(MANIFEST_CHECKS) | set(UNKNOWN_FROM_MANIFESTS) == expected


def test_ready_cluster_passes_every_manifest_check() -> None:
    findings = by_id(evaluate(snapshot_from_objects(ready_cluster()), CONTEXT))
    for check_id in MANIFEST_CHECKS:
        assert findings[check_id].status == Status.passed, (check_id, findings[check_id].summary)
    for check_id in UNKNOWN_FROM_MANIFESTS:
        assert findings[check_id].status == Status.unknown, check_id


@pytest.mark.parametrize("check_id", MANIFEST_CHECKS)
def test_each_check_fails_on_its_fixture(check_id: str) -> None:
    findings = by_id(evaluate(snapshot_from_objects(failing_cluster(check_id)), CONTEXT))
    assert findings[check_id].status.value == FAILING[check_id][1], findings[check_id].summary
    assert findings[check_id].evidence, "a failing finding names the objects involved"
    assert findings[check_id].remediation and findings[check_id].guide_section
    others = [c for c in MANIFEST_CHECKS if c != check_id and findings[c].status != Status.passed]
    # Each mutation is aimed at one check; only capacity checks may move together.
    assert set(others) <= {"spare-capacity", "vpc-cni-warm-ips", "unreachable-toleration"}, others


def test_evidence_names_the_exact_objects() -> None:
    findings = by_id(evaluate(snapshot_from_objects(failing_cluster("system-masters-binding")), CONTEXT))
    refs = [(e.kind, e.namespace, e.name) for e in findings["system-masters-binding"].evidence]
    assert refs == [("CertificateSigningRequest", None, "ops-admin")]
    findings = by_id(evaluate(snapshot_from_objects(failing_cluster("iam-dependent-workloads")), CONTEXT))
    refs = [(e.kind, e.namespace, e.name) for e in findings["iam-dependent-workloads"].evidence]
    assert ("Deployment", "shop", "uploader") in refs


def test_images_without_a_local_registry_list_are_remote() -> None:
    findings = by_id(evaluate(snapshot_from_objects(ready_cluster()), CheckContext()))
    assert findings["image-sources"].status == Status.fail
    assert "not cached on node-1, node-2, node-3" in findings["image-sources"].evidence[0].detail


def test_cached_images_pass_even_from_ecr() -> None:
    objects = failing_cluster("image-sources")
    for obj in objects:
        if obj["kind"] == "Node":
            obj["status"]["images"] = [
                {"names": ["123456789012.dkr.ecr.us-west-2.amazonaws.com/shop/api:2.0"]}
            ]
    findings = by_id(evaluate(snapshot_from_objects(objects), CONTEXT))
    assert findings["image-sources"].status == Status.passed


def test_score_formula() -> None:
    ready = evaluate(snapshot_from_objects(ready_cluster()), CONTEXT)
    worse = evaluate(snapshot_from_objects(failing_cluster("system-masters-binding")), CONTEXT)
    assert 0 <= score(worse) < score(ready) < 100  # unknowns cost a quarter of their weight
    assert score([]) == 100


def test_advice_never_suggests_a_group_the_credential_policy_refuses() -> None:
    """The system:masters advice used to suggest O=eks-breakglass, which issuing now refuses (issue
    12): no remediation may name a group off the default allow-list."""
    from app.services.credentials.policy import check_allowed_group
    from app.services.credentials.vocabulary import DEFAULT_GROUP, CredentialInputError

    for check_id, spec in SPECS.items():
        for group in (g.rstrip(".,;:") for g in re.findall(r"O=([^\s,;)]+)", spec.remediation)):
            if group == "system:masters":
                continue  # named as what never to do
            try:
                check_allowed_group(group, [DEFAULT_GROUP])
            except CredentialInputError:
                pytest.fail(f"{check_id}: the advice suggests O={group}, which issuing refuses")
    assert f"O={DEFAULT_GROUP}" in SPECS["system-masters-binding"].remediation
