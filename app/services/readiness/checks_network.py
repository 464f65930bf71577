"""Load-balancing checks: ALB TLS through ACM, and workloads behind the AWS Load Balancer Controller."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.services.readiness.model import CheckContext, ClusterSnapshot, Evidence, Finding, Status
from app.services.readiness.objects import (
    annotations_of,
    distinct_objects,
    evidence,
    group_evidence,
    labels_of,
    name_of,
    namespace_of,
    selector_matches,
    spec_of,
    workload_groups,
)
from app.services.readiness.pods import PodGroup
from app.services.readiness.specs import finding

ALB = "alb.ingress.kubernetes.io/"
ALB_CONTROLLER = "ingress.k8s.aws/alb"
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


def alb_ingresses(snapshot: ClusterSnapshot) -> list[Mapping[str, Any]]:
    alb_classes = {"alb"} | {
        name_of(cls)
        for cls in snapshot.of_kind("IngressClass")
        if spec_of(cls).get("controller") == ALB_CONTROLLER
    }
    return [
        ingress
        for ingress in snapshot.of_kind("Ingress")
        if spec_of(ingress).get("ingressClassName") in alb_classes
        or annotations_of(ingress).get("kubernetes.io/ingress.class") in alb_classes
    ]


def _hosts(ingress: Mapping[str, Any]) -> list[str]:
    spec = spec_of(ingress)
    hosts = [str(h) for tls in spec.get("tls") or [] for h in tls.get("hosts") or []]
    hosts += [str(rule["host"]) for rule in spec.get("rules") or [] if rule.get("host")]
    return list(dict.fromkeys(hosts))


def check_alb_acm_certificates(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    certificates = snapshot.aws.certificates
    failing: list[Evidence] = []
    warning: list[Evidence] = []
    fine: list[Evidence] = []
    for ingress in alb_ingresses(snapshot):
        notes = annotations_of(ingress)
        arns = [a.strip() for a in str(notes.get(ALB + "certificate-arn", "")).split(",") if a.strip()]
        https = "HTTPS" in str(notes.get(ALB + "listen-ports", "")) or bool(spec_of(ingress).get("tls"))
        if not arns:
            if https:
                warning.append(
                    evidence(
                        ingress,
                        "TLS certificate discovered from ACM by host "
                        f"({', '.join(_hosts(ingress)) or 'no host'}); rotation fails while "
                        "disconnected",
                    )
                )
            continue
        for arn in arns:
            fact = certificates.get(arn) if certificates is not None else None
            if fact is None or fact.not_after is None:
                reason = "ACM could not be read" if certificates is None else "certificate not found in ACM"
                warning.append(evidence(ingress, f"{arn}: expiry unknown ({reason})"))
                continue
            left = fact.not_after - context.now
            detail = f"{arn} ({fact.domain}) expires {fact.not_after:%Y-%m-%d} ({left.days} days)"
            if left < context.horizon:
                failing.append(evidence(ingress, detail + ": inside the disconnect horizon"))
            elif left < context.horizon * 2:
                warning.append(evidence(ingress, detail + ": renew before a long disconnect"))
            else:
                fine.append(evidence(ingress, detail))
    shift = context.horizon_shift
    if failing:
        return [
            finding(
                "alb-acm-certificates",
                Status.fail,
                f"{distinct_objects(failing + warning + fine)} Ingress(es) terminate TLS with ACM; "
                f"{distinct_objects(failing)} have a certificate expiring within the "
                f"{context.horizon_hours} h horizon, and renewal needs the Region.",
                failing + warning + fine,
                horizon_shift=shift,
            )
        ]
    if warning:
        return [
            finding(
                "alb-acm-certificates",
                Status.warn,
                f"{distinct_objects(warning + fine)} Ingress(es): ALB TLS relies on ACM; it keeps working, "
                "but new Ingresses and certificate changes fail while disconnected.",
                warning + fine,
                horizon_shift=shift,
            )
        ]
    summary = (
        f"{distinct_objects(fine)} Ingress(es): their ACM certificates outlive the horizon."
        if fine
        else "No ALB Ingress uses ACM."
    )
    return [finding("alb-acm-certificates", Status.passed, summary, fine)]


def _backend_services(ingress: Mapping[str, Any]) -> set[str]:
    spec = spec_of(ingress)
    backends = [spec.get("defaultBackend") or {}]
    for rule in spec.get("rules") or []:
        backends += [path.get("backend") or {} for path in (rule.get("http") or {}).get("paths") or []]
    return {str((b.get("service") or {}).get("name") or b.get("serviceName") or "") for b in backends} - {""}


def _ip_target_services(snapshot: ClusterSnapshot) -> dict[tuple[str, str], str]:
    """(namespace, service) -> why its pods are ALB targets by IP."""
    services = {(namespace_of(s) or "default", name_of(s)): s for s in snapshot.of_kind("Service")}
    result: dict[tuple[str, str], str] = {}
    for ingress in alb_ingresses(snapshot):
        namespace = namespace_of(ingress) or "default"
        ingress_mode = annotations_of(ingress).get(ALB + "target-type", "instance")
        for name in _backend_services(ingress):
            service = services.get((namespace, name))
            mode = annotations_of(service).get(ALB + "target-type", ingress_mode) if service else ingress_mode
            if mode == "ip":
                result[(namespace, name)] = f"Ingress {name_of(ingress)} targets pods by IP"
    for binding in snapshot.of_kind("TargetGroupBinding"):
        spec = spec_of(binding)
        if spec.get("targetType") == "ip":
            ref = str((spec.get("serviceRef") or {}).get("name", ""))
            result[(namespace_of(binding) or "default", ref)] = f"TargetGroupBinding {name_of(binding)} (ip)"
    return result


def _service_load_balancer(service: Mapping[str, Any]) -> str | None:
    """What a `type: LoadBalancer` Service asks AWS for (never an ALB), or None for other types."""
    spec = spec_of(service)
    if spec.get("type") != "LoadBalancer":
        return None
    cls = spec.get("loadBalancerClass")
    kind = annotations_of(service).get("service.beta.kubernetes.io/aws-load-balancer-type")
    if cls == "service.k8s.aws/nlb" or kind in ("nlb", "external", "nlb-ip"):
        return "Service of type LoadBalancer provisions a Network Load Balancer"
    if cls:
        return f"Service of type LoadBalancer with class {cls} (not an ALB)"
    return "Service of type LoadBalancer without annotations provisions a Classic Load Balancer"


def _hpa_for(snapshot: ClusterSnapshot, group: PodGroup) -> Mapping[str, Any] | None:
    for hpa in snapshot.of_kind("HorizontalPodAutoscaler"):
        target = spec_of(hpa).get("scaleTargetRef") or {}
        if (
            (namespace_of(hpa) or "default") == group.namespace
            and target.get("kind") == group.owner_kind
            and target.get("name") == group.owner_name
        ):
            return hpa
    return None


def check_lb_controller_new_pods(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    targets = _ip_target_services(snapshot)
    gated_namespaces = {
        name_of(ns)
        for ns in snapshot.of_kind("Namespace")
        if labels_of(ns).get(READINESS_GATE_LABEL) == "enabled"
    }
    services = {(namespace_of(s) or "default", name_of(s)): s for s in snapshot.of_kind("Service")}
    failing: list[Evidence] = []
    warning: list[Evidence] = []
    for group in workload_groups(snapshot):
        labels = dict(group.labels)
        reasons = [
            why
            for (namespace, name), why in targets.items()
            if namespace == group.namespace
            and (namespace, name) in services
            and selector_matches(spec_of(services[(namespace, name)]).get("selector") or {}, labels)
        ]
        if not reasons:
            continue
        gated = group.readiness_gates or group.namespace in gated_namespaces
        peak = math.ceil(group.count * (1 + context.surge_percent / 100))
        hpa = _hpa_for(snapshot, group)
        why = "; ".join(reasons)
        if gated:
            failing.append(
                group_evidence(
                    group,
                    f"{why}; readiness gates: new pods never become Ready "
                    "while disconnected (rollouts and replacements stall)",
                )
            )
        elif hpa is not None:
            minimum = int(spec_of(hpa).get("minReplicas", 1))
            if minimum < peak:
                warning.append(
                    group_evidence(
                        group,
                        f"{why}; HPA {name_of(hpa)} minReplicas {minimum} is "
                        f"below the expected peak {peak}; new pods get no traffic",
                    )
                )
        else:
            warning.append(
                group_evidence(
                    group,
                    f"{why}; {group.count} replica(s): pods added during a "
                    f"disconnect get no traffic (expected peak {peak})",
                )
            )
    for service in services.values():
        asks = _service_load_balancer(service)
        if asks:
            warning.append(evidence(service, f"{asks}: only Application Load Balancers work on Outposts"))
    shift = context.horizon_shift
    if failing:
        return [
            finding(
                "lb-controller-new-pods",
                Status.fail,
                f"{distinct_objects(failing + warning)} workload(s) or Service(s) depend on load "
                f"balancing that fails while disconnected; {distinct_objects(failing)} use ALB readiness "
                "gates: pods created while disconnected never become Ready.",
                failing + warning,
                horizon_shift=shift,
            )
        ]
    if warning:
        return [
            finding(
                "lb-controller-new-pods",
                Status.warn,
                f"{distinct_objects(warning)} workload(s) or Service(s): workloads behind ALB IP targets "
                "cannot add serving capacity while disconnected, and Services of type LoadBalancer get "
                "no Network or Classic Load Balancer on Outposts.",
                warning,
                horizon_shift=shift,
            )
        ]
    return [
        finding("lb-controller-new-pods", Status.passed, "No workload depends on new ALB targets to scale.")
    ]
