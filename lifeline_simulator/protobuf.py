"""Decoding `application/vnd.kubernetes.protobuf` request bodies for the kinds kubectl writes that way.

kubectl 1.31+ sends typed writes (create clusterrolebinding, create namespace, auth can-i,
certificate approve) as protobuf and does not fall back to JSON, so the simulator reads them:
the `k8s\\0` envelope, a runtime.Unknown, then the object by the field numbers of k8s.io/api's
generated.proto. Each result is the JSON form of the object; other kinds get a clear 415.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from lifeline_simulator.errors import ApiError

MAGIC = b"k8s\x00"
Schema = dict[int, tuple[str, str, Any]]  # field number -> (json name, wire kind, sub-schema)

TIME: Schema = {1: ("seconds", "int", None), 2: ("nanos", "int", None)}
OWNER_REFERENCE: Schema = {
    1: ("kind", "string", None),
    3: ("name", "string", None),
    4: ("uid", "string", None),
    5: ("apiVersion", "string", None),
    6: ("controller", "bool", None),
    7: ("blockOwnerDeletion", "bool", None),
}
OBJECT_META: Schema = {
    1: ("name", "string", None),
    2: ("generateName", "string", None),
    3: ("namespace", "string", None),
    5: ("uid", "string", None),
    6: ("resourceVersion", "string", None),
    7: ("generation", "int", None),
    8: ("creationTimestamp", "time", TIME),
    11: ("labels", "map", None),
    12: ("annotations", "map", None),
    13: ("ownerReferences", "repeated_message", OWNER_REFERENCE),
    14: ("finalizers", "repeated_string", None),
}
SUBJECT: Schema = {
    1: ("kind", "string", None),
    2: ("apiGroup", "string", None),
    3: ("name", "string", None),
    4: ("namespace", "string", None),
}
ROLE_REF: Schema = {1: ("apiGroup", "string", None), 2: ("kind", "string", None), 3: ("name", "string", None)}
POLICY_RULE: Schema = {
    1: ("verbs", "repeated_string", None),
    2: ("apiGroups", "repeated_string", None),
    3: ("resources", "repeated_string", None),
    4: ("resourceNames", "repeated_string", None),
    5: ("nonResourceURLs", "repeated_string", None),
}
BINDING: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: ("subjects", "repeated_message", SUBJECT),
    3: ("roleRef", "message", ROLE_REF),
}
ROLE: Schema = {1: ("metadata", "message", OBJECT_META), 2: ("rules", "repeated_message", POLICY_RULE)}
NAMESPACE: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: ("spec", "message", {1: ("finalizers", "repeated_string", None)}),
    3: ("status", "message", {1: ("phase", "string", None)}),
}
RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string", None),
    2: ("verb", "string", None),
    3: ("group", "string", None),
    4: ("version", "string", None),
    5: ("resource", "string", None),
    6: ("subresource", "string", None),
    7: ("name", "string", None),
}
NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "string", None), 2: ("verb", "string", None)}
_ATTRIBUTES: Schema = {
    1: ("resourceAttributes", "message", RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", "message", NON_RESOURCE_ATTRIBUTES),
}
ACCESS_REVIEW: Schema = {1: ("metadata", "message", OBJECT_META), 2: ("spec", "message", _ATTRIBUTES)}
# A SubjectAccessReviewSpec is the self review's plus the subject asked about.
SUBJECT_ACCESS_REVIEW: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: (
        "spec",
        "message",
        {
            **_ATTRIBUTES,
            3: ("user", "string", None),
            4: ("groups", "repeated_string", None),
            6: ("uid", "string", None),
        },
    ),
}
RULES_REVIEW: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: ("spec", "message", {1: ("namespace", "string", None)}),
}
SELF_REVIEW: Schema = {1: ("metadata", "message", OBJECT_META)}
CSR_CONDITION: Schema = {
    1: ("type", "string", None),
    6: ("status", "string", None),
    2: ("reason", "string", None),
    3: ("message", "string", None),
    4: ("lastUpdateTime", "time", TIME),
    5: ("lastTransitionTime", "time", TIME),
}
CSR: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: (
        "spec",
        "message",
        {
            1: ("request", "bytes", None),
            7: ("signerName", "string", None),
            8: ("expirationSeconds", "int", None),
            5: ("usages", "repeated_string", None),
            2: ("username", "string", None),
            3: ("uid", "string", None),
            4: ("groups", "repeated_string", None),
        },
    ),
    3: (
        "status",
        "message",
        {1: ("conditions", "repeated_message", CSR_CONDITION), 2: ("certificate", "bytes", None)},
    ),
}
KINDS: dict[tuple[str, str], Schema] = {
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): BINDING,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ROLE,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("v1", "Namespace"): NAMESPACE,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): ACCESS_REVIEW,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): RULES_REVIEW,
    ("authorization.k8s.io/v1", "SubjectAccessReview"): SUBJECT_ACCESS_REVIEW,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): SELF_REVIEW,
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): CSR,
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field; length-delimited values are bytes."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, value in _fields(data):
        if number not in schema:
            continue
        name, kind, sub = schema[number]
        if kind == "string":
            obj[name] = value.decode()
        elif kind == "bytes":
            obj[name] = base64.b64encode(value).decode()
        elif kind == "int":
            obj[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool":
            obj[name] = bool(value)
        elif kind == "message":
            obj[name] = _message(value, sub)
        elif kind == "time":
            seconds = _message(value, sub).get("seconds", 0)
            if not seconds:  # Go encodes a zero Time as an empty message: it means "unset"
                continue
            obj[name] = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "repeated_string":
            obj.setdefault(name, []).append(value.decode())
        elif kind == "repeated_message":
            obj.setdefault(name, []).append(_message(value, sub))
        elif kind == "map":
            entry = {n: v.decode() for n, _, v in _fields(value)}
            obj.setdefault(name, {})[entry.get(1, "")] = entry.get(2, "")
    return obj


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object, or ApiError 400/415."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "protobuf body does not start with the k8s envelope prefix")
    try:
        unknown = {n: v for n, _, v in _fields(body[len(MAGIC) :])}
        type_meta = {n: v.decode() for n, _, v in _fields(unknown.get(1, b""))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        schema = KINDS.get((api_version, kind))
        if schema is None:
            raise ApiError(
                415,
                f"the simulator cannot read {kind or 'this object'} ({api_version}) as protobuf; "
                "send application/json",
            )
        obj = _message(unknown.get(2, b""), schema)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"protobuf body could not be decoded: {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
