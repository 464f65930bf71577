"""Storage checks: workloads that need new EBS volumes, and backups built on EBS snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.services.readiness.model import CheckContext, ClusterSnapshot, Evidence, Finding, Status
from app.services.readiness.objects import (
    annotations_of,
    evidence,
    name_of,
    namespace_of,
    spec_of,
)
from app.services.readiness.specs import finding

EBS_PROVISIONERS = frozenset({"ebs.csi.aws.com", "kubernetes.io/aws-ebs"})
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def _ebs_classes(snapshot: ClusterSnapshot) -> tuple[set[str], str | None]:
    ebs = set()
    default = None
    for sc in snapshot.of_kind("StorageClass"):
        if sc.get("provisioner") in EBS_PROVISIONERS:
            ebs.add(name_of(sc))
        if str(annotations_of(sc).get(DEFAULT_CLASS, "")).lower() == "true":
            default = name_of(sc)
    return ebs, default


def _claim_is_ebs(
    claim: Mapping[str, Any], ebs: set[str], default: str | None, pvs: Mapping[str, Mapping[str, Any]]
) -> bool | None:
    """True/False when the claim is/isn't EBS-backed, None when it cannot be told."""
    notes = annotations_of(claim)
    for key in ("volume.kubernetes.io/storage-provisioner", "volume.beta.kubernetes.io/storage-provisioner"):
        if notes.get(key) in EBS_PROVISIONERS:
            return True
    spec = spec_of(claim)
    volume = pvs.get(str(spec.get("volumeName", "")))
    if volume is not None:
        pv_spec = spec_of(volume)
        driver = (pv_spec.get("csi") or {}).get("driver")
        if driver in EBS_PROVISIONERS or "awsElasticBlockStore" in pv_spec:
            return True
        if annotations_of(volume).get("pv.kubernetes.io/provisioned-by") in EBS_PROVISIONERS:
            return True
    cls = spec.get("storageClassName", default)
    if cls is None:
        return None
    return cls in ebs


def check_ebs_workloads(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    ebs, default = _ebs_classes(snapshot)
    pvs = {name_of(pv): pv for pv in snapshot.of_kind("PersistentVolume")}
    claims = {
        (namespace_of(c) or "default", name_of(c)): c for c in snapshot.of_kind("PersistentVolumeClaim")
    }
    hits: list[Evidence] = []
    unsure: list[Evidence] = []
    for sts in snapshot.of_kind("StatefulSet"):
        for template in spec_of(sts).get("volumeClaimTemplates") or []:
            verdict = _claim_is_ebs(template, ebs, default, pvs)
            detail = f"volumeClaimTemplate {name_of(template)}"
            if verdict:
                hits.append(evidence(sts, f"{detail} on EBS: new replicas need new EBS volumes"))
            elif verdict is None:
                unsure.append(evidence(sts, f"{detail}: storage class unknown (EBS is the local default)"))
    for kind in ("Deployment", "ReplicaSet", "DaemonSet", "Job"):
        for workload in snapshot.of_kind(kind):
            if kind == "ReplicaSet" and (workload.get("metadata") or {}).get("ownerReferences"):
                continue
            namespace = namespace_of(workload) or "default"
            volumes = ((spec_of(workload).get("template") or {}).get("spec") or {}).get("volumes") or []
            for volume in volumes:
                claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if not claim_name:
                    continue
                claim = claims.get((namespace, str(claim_name)))
                verdict = _claim_is_ebs(claim, ebs, default, pvs) if claim else None
                if verdict:
                    hits.append(
                        evidence(
                            workload,
                            f"PVC {claim_name} on EBS: pods cannot start elsewhere "
                            "while the EBS API is unreachable",
                        )
                    )
                elif verdict is None:
                    unsure.append(evidence(workload, f"PVC {claim_name}: backing storage unknown"))
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
                f"{len(hits)} workload(s) or class(es) depend on EBS operations that fail while "
                "disconnected.",
                hits + unsure,
                horizon_shift=shift,
            )
        ]
    if unsure:
        return [
            finding(
                "ebs-workloads",
                Status.warn,
                "Storage for some claims could not be resolved.",
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
            f"{len(classes)} VolumeSnapshotClass(es) back up through EBS snapshots.",
            ev,
        )
    ]
