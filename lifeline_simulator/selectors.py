"""Label and field selectors with the API server's grammar and its refusal of unsupported fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lifeline_simulator.errors import ApiError

Predicate = Callable[[dict[str, Any]], bool]

_LABEL_KEY = re.compile(
    r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$"
)

# Field labels the API server supports for every kind, and the extra ones per resource.
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "persistentvolumeclaims": ("spec.storageClassName",),
    "certificatesigningrequests": ("spec.signerName",),
    "services": ("spec.type", "spec.clusterIP"),
    "statefulsets": ("status.successful",),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "replicasets": ("status.replicas",),
    "jobs": ("status.successful",),
}


def _split_requirements(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _check_key(key: str, selector: str) -> str:
    if not _LABEL_KEY.match(key):
        raise ApiError(
            400, f'unable to parse requirement: invalid label key "{key}" in selector "{selector}"'
        )
    return key


LabelCheck = Callable[[dict[str, str]], bool]


def _label_check(key: str, operator: str, values: frozenset[str]) -> LabelCheck:
    def check(labels: dict[str, str]) -> bool:
        if operator == "in":
            return labels.get(key) in values
        if operator == "notin":
            return labels.get(key) not in values
        if operator == "exists":
            return key in labels
        if operator == "absent":
            return key not in labels
        if operator == "!=":
            return labels.get(key) not in values
        return labels.get(key) in values

    return check


def parse_label_selector(selector: str) -> Predicate:
    """`app=web,tier!=db,env in (a,b),!legacy` -> predicate over an object's labels."""
    checks: list[LabelCheck] = []
    for requirement in _split_requirements(selector):
        set_match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", requirement)
        if set_match:
            key = _check_key(set_match.group(1), selector)
            values = frozenset(v.strip() for v in set_match.group(3).split(",") if v.strip())
            checks.append(_label_check(key, set_match.group(2), values))
            continue
        eq_match = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", requirement)
        if eq_match:
            key = _check_key(eq_match.group(1), selector)
            checks.append(_label_check(key, eq_match.group(2), frozenset({eq_match.group(3)})))
            continue
        if requirement.startswith("!"):
            checks.append(_label_check(_check_key(requirement[1:].strip(), selector), "absent", frozenset()))
            continue
        checks.append(_label_check(_check_key(requirement, selector), "exists", frozenset()))

    def predicate(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return predicate


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(selector: str, plural: str) -> Predicate:
    """`metadata.name=x,spec.nodeName!=y`; an unsupported field is a 400, as in Kubernetes."""
    allowed = COMMON_FIELDS + EXTRA_FIELDS.get(plural, ())
    checks: list[Predicate] = []
    for requirement in _split_requirements(selector):
        match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", requirement)
        if not match:
            raise ApiError(400, f'invalid selector: "{selector}"; can\'t understand "{requirement}"')
        field, operator, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if field not in allowed:
            raise ApiError(400, f"field label not supported: {field}")
        checks.append(_field_check(field, operator == "!=", value))

    def predicate(obj: dict[str, Any]) -> bool:
        return all(check(obj) for check in checks)

    return predicate


def _field_check(field: str, negate: bool, value: str) -> Predicate:
    def check(obj: dict[str, Any]) -> bool:
        return (_field_value(obj, field) == value) != negate

    return check
