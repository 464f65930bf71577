"""CustomResourceDefinitions (apiextensions.k8s.io/v1): the resource types they make the server serve.

A CRD is Established as soon as it is stored; its custom resources are then served at
`/apis/<group>/<version>/...` and listed in discovery. Custom resources are stored as sent: the
simulator does not validate them against the CRD's `openAPIV3Schema` (no pruning, no defaults), the
reason being that kube-openapi's structural-schema machinery has no well-kept Python port; it says so
in the README. `additionalPrinterColumns` with simple `.a.b` JSONPaths become the table columns.
"""

from __future__ import annotations

from typing import Any

from lifeline_simulator.resources import AGE, NAME, Column, ResourceType


def _path_value(path: str):  # type: ignore[no-untyped-def]
    parts = [p for p in path.strip().lstrip(".").split(".") if p]

    def value(obj: dict[str, Any]) -> Any:
        node: Any = obj
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        return node

    return value


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of the CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = tuple(s for s in ("status", "scale") if s in (version.get("subresources") or {}))
        columns = [
            Column(
                str(c.get("name", "")),
                str(c.get("type", "string")),
                str(c.get("description", "")),
                _path_value(str(c.get("jsonPath", ""))),
                priority=int(c.get("priority", 0)),
            )
            for c in version.get("additionalPrinterColumns") or []
            if c.get("jsonPath") != ".metadata.creationTimestamp"
        ]
        out.append(
            ResourceType(
                str(spec.get("group", "")),
                str(version.get("name", "")),
                str(names.get("kind", "")),
                str(names.get("plural", "")),
                spec.get("scope", "Namespaced") == "Namespaced",
                tuple(names.get("shortNames") or ()),
                subresources=subresources,
                categories=tuple(names.get("categories") or ()),
                columns=(NAME, *columns, AGE),
                custom=True,
            )
        )
    return out


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": [
            v["name"] for v in spec.get("versions") or [] if v.get("storage") and v.get("name")
        ],
    }
