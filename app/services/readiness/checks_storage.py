"""Storage checks: workloads that need new EBS volumes, and backups built on EBS snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.services.readiness.model import CheckContext, ClusterSnapshot, Evidence, Finding, Status
from app.services.readiness.objects import (
    annotations_of,
    distinct_objects,
    evidence,
    group_evidence,
    name_of,
    namespace_of,
    spec_of,
    workload_groups,
)
from app.services.readiness.specs import finding

EBS_PROVISIONERS = frozenset({"ebs.csi.aws.com", "kubernetes.io/aws-ebs"})
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


LEGACY_CLASS = "volume.beta.kubernetes.io/storage-class"


@dataclass(frozen=True)
class _Classes:
    """What the dump says about StorageClasses (a `helm template` output usually holds none)."""

    ebs: frozenset[str]
    other: frozenset[str]
    default: str | None

    def verdict(self, cls: str | None) -> tuple[bool | None, str]:
        """(is EBS, why) for a claim asking for class `cls` (None: the cluster default)."""
        if cls is None:
            if self.default is None:
                return True, "no class named and no default in the dump: a local cluster's default is EBS gp2"
            cls = self.default
        if cls == "":
            return None, 'storageClassName "" binds a pre-created PersistentVolume'
        if cls in self.ebs:
            return True, f"class {cls} provisions EBS"
        if cls in self.other:
            return False, f"class {cls} is not EBS"
        return True, f"class {cls} is not in the dump: a local cluster provisions EBS unless told otherwise"


def _classes(snapshot: ClusterSnapshot) -> _Classes:
    ebs: set[str] = set()
    other: set[str] = set()
    default = None
    for sc in snapshot.of_kind("StorageClass"):
        (ebs if sc.get("provisioner") in EBS_PROVISIONERS else other).add(name_of(sc))
        if str(annotations_of(sc).get(DEFAULT_CLASS, "")).lower() == "true":
            default = name_of(sc)
    return _Classes(frozenset(ebs), frozenset(other), default)


def _claim_class(claim: Mapping[str, Any]) -> str | None:
    """The class a claim asks for; the legacy beta annotation wins, as it does in Kubernetes."""
    legacy = annotations_of(claim).get(LEGACY_CLASS)
    if legacy is not None:
        return str(legacy)
    value = spec_of(claim).get("storageClassName")
    return None if value is None else str(value)


def _claim_is_ebs(
    claim: Mapping[str, Any], classes: _Classes, pvs: Mapping[str, Mapping[str, Any]]
) -> tuple[bool | None, str]:
    """(True/False when the claim is/isn't EBS-backed, None when it cannot be told; why)."""
    notes = annotations_of(claim)
    for key in ("volume.kubernetes.io/storage-provisioner", "volume.beta.kubernetes.io/storage-provisioner"):
        if notes.get(key) in EBS_PROVISIONERS:
            return True, f"provisioned by {notes[key]}"
    volume = pvs.get(str(spec_of(claim).get("volumeName", "")))
    if volume is not None:
        pv_spec = spec_of(volume)
        driver = (pv_spec.get("csi") or {}).get("driver")
        if driver in EBS_PROVISIONERS or "awsElasticBlockStore" in pv_spec:
            return True, f"bound to EBS volume {name_of(volume)}"
        if annotations_of(volume).get("pv.kubernetes.io/provisioned-by") in EBS_PROVISIONERS:
            return True, f"bound to EBS volume {name_of(volume)}"
        return False, f"bound to non-EBS volume {name_of(volume)}"
    return classes.verdict(_claim_class(claim))


def check_ebs_workloads(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    classes = _classes(snapshot)
    pvs = {name_of(pv): pv for pv in snapshot.of_kind("PersistentVolume")}
    claims = {
        (namespace_of(c) or "default", name_of(c)): c for c in snapshot.of_kind("PersistentVolumeClaim")
    }
    hits: list[Evidence] = []
    unsure: list[Evidence] = []
    templates: dict[tuple[str, str], tuple[str, ...]] = {}
    for sts in snapshot.of_kind("StatefulSet"):
        names = []
        for template in spec_of(sts).get("volumeClaimTemplates") or []:
            names.append(name_of(template))
            verdict, why = _claim_is_ebs(template, classes, pvs)
            detail = f"volumeClaimTemplate {name_of(template)}: {why}"
            if verdict:
                hits.append(evidence(sts, f"{detail}; new replicas need new EBS volumes"))
            elif verdict is None:
                unsure.append(evidence(sts, detail))
        templates[(namespace_of(sts) or "default", name_of(sts))] = tuple(names)
    for group in workload_groups(snapshot):
        for volume in group.ebs_volumes:
            hits.append(group_evidence(group, f"{volume}: attaching it needs the EBS API"))
        for vname, cls in group.ephemeral_classes:
            verdict, why = classes.verdict(cls)
            if verdict:
                hits.append(
                    group_evidence(group, f"ephemeral volume {vname}: {why}; every pod needs a new one")
                )
            elif verdict is None:
                unsure.append(group_evidence(group, f"ephemeral volume {vname}: {why}"))
        own = (
            templates.get((group.namespace, group.owner_name), ())
            if group.owner_kind == "StatefulSet"
            else ()
        )
        for claim_name in group.claims:
            if any(claim_name.startswith(f"{t}-{group.owner_name}-") for t in own):
                continue  # a StatefulSet's own claim, reported with its template above
            claim = claims.get((group.namespace, claim_name))
            if claim is None:
                unsure.append(
                    group_evidence(group, f"PVC {claim_name} is not in the dump: backing storage unknown")
                )
                continue
            verdict, why = _claim_is_ebs(claim, classes, pvs)
            if verdict:
                hits.append(
                    group_evidence(
                        group,
                        f"PVC {claim_name} ({why}): pods cannot start elsewhere while the EBS API "
                        "is unreachable",
                    )
                )
            elif verdict is None:
                unsure.append(group_evidence(group, f"PVC {claim_name}: {why}"))
    for sc in snapshot.of_kind("StorageClass"):
        kind_param = str((sc.get("parameters") or {}).get("type", "gp2"))
        if sc.get("provisioner") in EBS_PROVISIONERS and kind_param != "gp2":
            hits.append(evidence(sc, f"type {kind_param}: Outposts support EBS gp2 only"))
    shift = context.horizon_shift
    if hits:
        return [
            finding(
                "ebs-workloads",
                Status.fail,
                f"{distinct_objects(hits + unsure)} workload(s) or class(es) depend on EBS operations; "
                f"{distinct_objects(hits)} of them fail while disconnected.",
                hits + unsure,
                horizon_shift=shift,
            )
        ]
    if unsure:
        return [
            finding(
                "ebs-workloads",
                Status.warn,
                f"{distinct_objects(unsure)} workload(s) use storage whose backing could not be resolved.",
                unsure,
                horizon_shift=shift,
            )
        ]
    return [finding("ebs-workloads", Status.passed, "No workload needs new EBS volumes.")]


def check_ebs_snapshots(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    classes = [c for c in snapshot.of_kind("VolumeSnapshotClass") if c.get("driver") in EBS_PROVISIONERS]
    if not classes:
        return [finding("ebs-snapshots", Status.passed, "No VolumeSnapshotClass uses the EBS CSI driver.")]
    names = {name_of(c) for c in classes}
    ev = [
        evidence(c, "driver ebs.csi.aws.com: snapshots cannot be created or deleted while disconnected")
        for c in classes
    ]
    ev += [
        evidence(snap, f"uses VolumeSnapshotClass {spec_of(snap).get('volumeSnapshotClassName')}")
        for snap in snapshot.of_kind("VolumeSnapshot")
        if spec_of(snap).get("volumeSnapshotClassName") in names
    ]
    return [
        finding(
            "ebs-snapshots",
            Status.warn,
            f"{distinct_objects(ev)} VolumeSnapshotClass(es) or snapshot(s) back up through EBS snapshots.",
            ev,
        )
    ]
