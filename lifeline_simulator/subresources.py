"""Subresources with their own kinds: `scale` (autoscaling/v1 Scale), pod `eviction` (PodDisruptionBudgets)
and the container endpoints the simulator refuses (`log`, `exec`, `attach`, `portforward`)."""

from __future__ import annotations

import math
from typing import Any

from lifeline_simulator.errors import ApiError
from lifeline_simulator.selectors import parse_label_selector

CONTAINER_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward"})
NO_CONTAINERS = (
    "the Lifeline simulator runs no containers: logs, exec, attach and port-forward are not "
    "available on a simulated cluster (it stores pods and their status only)"
)


def no_containers(subresource: str) -> ApiError:
    return ApiError(400, NO_CONTAINERS, details={"kind": f"pods/{subresource}"})


def selector_string(selector: dict[str, Any] | None) -> str:
    """A LabelSelector as the string `Scale.status.selector` carries (`app=web,tier in (a,b)`)."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {
            "replicas": int(status.get("replicas") or 0),
            "selector": selector_string(spec.get("selector")),
        },
    }


def replicas_from_scale(scale: Any, kind: str, name: str) -> int:
    replicas = ((scale or {}).get("spec") or {}).get("replicas", 0) if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ApiError(
            422,
            f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {replicas!r}: '
            "must be greater than or equal to 0",
        )
    return replicas


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    text = selector_string(selector)
    if not text:
        return False
    return parse_label_selector(text)({"metadata": {"labels": labels}})


def _ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    if any(c.get("type") == "Ready" for c in conditions):
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    # A dump without conditions: Running with every container ready counts as Ready.
    containers = status.get("containerStatuses") or []
    return status.get("phase") == "Running" and bool(containers) and all(c.get("ready") for c in containers)


def _amount(value: Any, expected: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * expected / 100)
    return int(value)


def pdb_status(pdb: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """What the disruption controller writes: expected, current and desired healthy, allowed."""
    spec = pdb.get("spec") or {}
    selected = [
        p for p in pods if matches(spec.get("selector"), (p.get("metadata") or {}).get("labels") or {})
    ]
    expected = len(selected)
    healthy = sum(1 for p in selected if _ready(p))
    if "minAvailable" in spec:
        desired = _amount(spec["minAvailable"], expected)
    elif "maxUnavailable" in spec:
        desired = max(0, expected - _amount(spec["maxUnavailable"], expected))
    else:
        desired = expected
    return {
        "observedGeneration": (pdb.get("metadata") or {}).get("generation", 1),
        "expectedPods": expected,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "disruptionsAllowed": max(0, healthy - desired),
        "conditions": [],
    }


def eviction_blocked(pdb: dict[str, Any], status: dict[str, Any]) -> ApiError:
    name = (pdb.get("metadata") or {}).get("name", "")
    return ApiError(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        reason="TooManyRequests",
        details={
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {name} needs {status['desiredHealthy']} healthy "
                    f"pods and has {status['currentHealthy']} currently",
                }
            ]
        },
    )
