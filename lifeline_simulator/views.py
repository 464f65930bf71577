"""Response documents: /version, discovery, `meta.k8s.io/v1` Tables, human ages, review answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lifeline_simulator.resources import (
    AGE,
    NAME,
    Column,
    ResourceType,
    api_resource_list,
    group_versions,
)
from lifeline_simulator.store import parse_timestamp


def version_info(kubernetes_version: str, build_date: dt.datetime) -> dict[str, str]:
    """All nine fields the Python client requires, shaped like an EKS local cluster's answer."""
    major, minor = kubernetes_version.split(".")[:2]
    patch = kubernetes_version.split(".")[2] if kubernetes_version.count(".") >= 2 else "0"
    return {
        "major": major,
        "minor": f"{minor}+",
        "gitVersion": f"v{major}.{minor}.{patch}-eks-local",
        "gitCommit": "0123456789abcdef0123456789abcdef01234567",
        "gitTreeState": "clean",
        "buildDate": build_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "goVersion": "go1.22.12",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list() -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in group_versions().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def served_groups() -> set[str]:
    return {name for name in group_versions() if name}


def api_group(name: str) -> dict[str, Any] | None:
    versions = group_versions().get(name)
    if not name or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    if version not in group_versions().get(group, []):
        return None
    return api_resource_list(group, version)


def human_duration(delta: dt.timedelta) -> str:
    """Kubernetes' duration.HumanDuration, as `kubectl get` shows ages."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def _cell(column: Column, obj: dict[str, Any], now: dt.datetime) -> Any:
    value = column.value(obj)
    if column is AGE or column.format == "date-time-ago":
        if not value:
            return "<unknown>"
        return human_duration(now - parse_timestamp(str(value)))
    return "" if value is None else value


def table(
    rtype: ResourceType,
    items: list[dict[str, Any]],
    now: dt.datetime,
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table: column definitions, one row per object with its metadata."""
    columns = rtype.columns or (NAME, AGE)
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": [_cell(c, obj, now) for c in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {
                "name": c.name,
                "type": c.type,
                "format": "name" if c is NAME else c.format.replace("date-time-ago", ""),
                "description": c.description,
                "priority": c.priority,
            }
            for c in columns
        ],
        "rows": rows,
    }


def list_document(
    rtype: ResourceType,
    items: list[dict[str, Any]],
    resource_version: str,
    continue_token: str,
    remaining: int | None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": f"{rtype.kind}List",
        "apiVersion": rtype.api_version,
        "metadata": metadata,
        "items": items,
    }
