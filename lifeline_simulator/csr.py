"""CertificateSigningRequests the way kube-apiserver admission and kube-controller-manager treat them.

Creation: validation plus CertificateSubjectRestriction (no system:masters for the client signer).
Approval: only through the `approval` subresource; Approved and Denied are exclusive and permanent.
Signing: `kubernetes.io/kube-apiserver-client` only, never auto-approved; usages must include
`client auth` and nothing beyond `digital signature`, `key encipherment`, `client auth`, otherwise
the CSR stays Approved without a certificate. Clean-up: as the controller's cleaner does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from lifeline_simulator.authn import Identity
from lifeline_simulator.errors import ApiError, invalid
from lifeline_simulator.pki import ClusterCA
from lifeline_simulator.store import parse_timestamp, timestamp

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
KNOWN_USAGES = frozenset(
    {
        "signing",
        "digital signature",
        "content commitment",
        "key encipherment",
        "key agreement",
        "data encipherment",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
        "any",
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "s/mime",
        "ipsec end system",
        "ipsec tunnel",
        "ipsec user",
        "timestamping",
        "ocsp signing",
        "microsoft sgc",
        "netscape sgc",
    }
)
CLIENT_ALLOWED_USAGES = frozenset({"digital signature", "key encipherment", "client auth"})
MIN_EXPIRATION_SECONDS = 600
# kube-controller-manager's default --cluster-signing-duration (8760h), which EKS keeps.
MAX_SIGNING_DURATION = dt.timedelta(days=365)
FINISHED_TTL = dt.timedelta(hours=1)
PENDING_TTL = dt.timedelta(hours=24)
GROUP = "certificates.k8s.io"


def parse_request(spec: dict[str, Any], name: str) -> x509.CertificateSigningRequest:
    raw = spec.get("request")
    if not raw:
        raise invalid("CertificateSigningRequest", name, [("spec.request", "Required value")], GROUP)
    try:
        pem = base64.b64decode(raw, validate=True)
        return x509.load_pem_x509_csr(pem)
    except (binascii.Error, ValueError):
        raise invalid(
            "CertificateSigningRequest",
            name,
            [("spec.request", "Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST")],
            GROUP,
        ) from None


def organisations(csr: x509.CertificateSigningRequest) -> list[str]:
    return [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def admit_create(obj: dict[str, Any], requester: Identity) -> dict[str, Any]:
    """Validate a new CSR, apply CertificateSubjectRestriction, stamp the requester, clear status."""
    name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or ""
    spec = obj.get("spec") or {}
    causes: list[tuple[str, str]] = []
    csr = parse_request(spec, name)
    if not csr.is_signature_valid:
        causes.append(("spec.request", "Invalid value: []byte{...}: signature verification failed"))
    signer = spec.get("signerName") or ""
    if not signer:
        causes.append(("spec.signerName", "Required value"))
    elif "/" not in signer:
        causes.append(
            ("spec.signerName", f'Invalid value: "{signer}": must be a fully qualified domain and path')
        )
    usages = spec.get("usages")
    if not usages:
        causes.append(("spec.usages", "Required value"))
    else:
        for index, usage in enumerate(usages):
            if usage not in KNOWN_USAGES:
                causes.append((f"spec.usages[{index}]", f'Unsupported value: "{usage}"'))
        if len(set(usages)) != len(usages):
            causes.append(("spec.usages", "Duplicate value"))
    seconds = spec.get("expirationSeconds")
    if seconds is not None:
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            causes.append(("spec.expirationSeconds", f"Invalid value: {seconds!r}: must be an integer"))
        elif seconds < MIN_EXPIRATION_SECONDS:
            causes.append(
                (
                    "spec.expirationSeconds",
                    f"Invalid value: {seconds}: may not specify a duration less than 600 seconds "
                    "(10 minutes)",
                )
            )
        elif seconds > 2**31 - 1:
            causes.append(("spec.expirationSeconds", f"Invalid value: {seconds}: must fit in int32"))
    if causes:
        raise invalid("CertificateSigningRequest", name, causes, GROUP)
    if signer == CLIENT_SIGNER and "system:masters" in organisations(csr):
        raise ApiError(
            403,
            f'certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: use of '
            f"{CLIENT_SIGNER} signer with system:masters group is not allowed",
            details={"name": name, "group": GROUP, "kind": "certificatesigningrequests"},
        )
    spec = dict(spec)
    spec["username"] = requester.user
    spec["groups"] = list(requester.groups)
    if requester.uid:
        spec["uid"] = requester.uid
    if requester.extra:
        spec["extra"] = {k: list(v) for k, v in requester.extra.items()}
    else:
        spec.pop("extra", None)
    return {**obj, "spec": spec, "status": {}}


def _types(conditions: list[dict[str, Any]]) -> list[str]:
    return [str(c.get("type")) for c in conditions]


def apply_approval(current: dict[str, Any], requested: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The new status after a PUT to /approval: conditions only, exclusive and never removed."""
    name = current["metadata"]["name"]
    old = list((current.get("status") or {}).get("conditions") or [])
    new = list((requested.get("status") or {}).get("conditions") or [])
    causes: list[tuple[str, str]] = []
    for index, cond in enumerate(new):
        kind = cond.get("type")
        if kind not in ("Approved", "Denied", "Failed"):
            causes.append((f"status.conditions[{index}].type", f'Unsupported value: "{kind}"'))
        if cond.get("status", "True") not in ("True", "False", "Unknown"):
            causes.append(
                (f"status.conditions[{index}].status", f'Unsupported value: "{cond.get("status")}"')
            )
        if kind in ("Approved", "Denied") and cond.get("status", "True") != "True":
            causes.append(
                (f"status.conditions[{index}].status", f'Unsupported value: "{cond.get("status")}"')
            )
        if _types(new).count(str(kind)) > 1:
            causes.append((f"status.conditions[{index}].type", f'Duplicate value: "{kind}"'))
    if "Approved" in _types(new) and "Denied" in _types(new):
        causes.append(
            ("status.conditions", "Invalid value: Approved and Denied conditions are mutually exclusive")
        )
    for kind in _types(old):
        if kind not in _types(new):
            causes.append(
                ("status.conditions", f'Forbidden: updates may not remove a condition of type "{kind}"')
            )
    if causes:
        raise invalid("CertificateSigningRequest", name, causes, GROUP)
    stamped = []
    for cond in new:
        cond = dict(cond)
        cond.setdefault("status", "True")
        previous = next((c for c in old if c.get("type") == cond["type"]), None)
        if previous is not None:
            cond = {**previous, **{k: v for k, v in cond.items() if k in ("reason", "message")}}
        else:
            cond.setdefault("lastUpdateTime", timestamp(now))
            cond.setdefault("lastTransitionTime", timestamp(now))
        stamped.append(cond)
    status = dict(current.get("status") or {})
    status["conditions"] = stamped
    return status


def apply_status(current: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """A PUT to /status (a signer's write): the certificate is immutable once set."""
    name = current["metadata"]["name"]
    old_cert = (current.get("status") or {}).get("certificate")
    status = dict(requested.get("status") or {})
    if old_cert and status.get("certificate") != old_cert:
        raise invalid(
            "CertificateSigningRequest",
            name,
            [("status.certificate", "Forbidden: updates may not modify a field")],
            GROUP,
        )
    if status.get("certificate"):
        try:
            x509.load_pem_x509_certificate(base64.b64decode(status["certificate"]))
        except (binascii.Error, ValueError):
            raise invalid(
                "CertificateSigningRequest",
                name,
                [("status.certificate", "Invalid value: must be PEM")],
                GROUP,
            ) from None
    old_types = _types((current.get("status") or {}).get("conditions") or [])
    if [t for t in old_types if t not in _types(status.get("conditions") or [])]:
        raise invalid(
            "CertificateSigningRequest", name, [("status.conditions", "Forbidden: may not be removed")], GROUP
        )
    return status


def sign_if_approved(obj: dict[str, Any], ca: ClusterCA, now: dt.datetime) -> dict[str, Any] | None:
    """The status after the kube-apiserver-client signer ran, or None when it leaves the CSR alone."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    kinds = _types(status.get("conditions") or [])
    if spec.get("signerName") != CLIENT_SIGNER or "Approved" not in kinds:
        return None
    if "Denied" in kinds or "Failed" in kinds or status.get("certificate"):
        return None
    usages = set(spec.get("usages") or [])
    if "client auth" not in usages or not usages <= CLIENT_ALLOWED_USAGES:
        # kube-controller-manager only logs this: the CSR stays Approved with no certificate.
        return None
    requested = spec.get("expirationSeconds")
    duration = MAX_SIGNING_DURATION
    if isinstance(requested, int) and requested >= MIN_EXPIRATION_SECONDS:
        duration = min(dt.timedelta(seconds=requested), MAX_SIGNING_DURATION)
    csr = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
    pem = ca.sign_request(csr, now, int(duration.total_seconds()))
    return {**status, "certificate": base64.b64encode(pem.encode()).decode()}


def is_garbage(obj: dict[str, Any], now: dt.datetime) -> bool:
    """True when the CSR cleaner would delete it (1 h after a decision, 24 h pending, or cert expired)."""
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    if not conditions:
        created = parse_timestamp(obj["metadata"]["creationTimestamp"])
        return now - created > PENDING_TTL
    certificate = status.get("certificate")
    if certificate:
        try:
            cert = x509.load_pem_x509_certificate(base64.b64decode(certificate))
            if now > cert.not_valid_after_utc:
                return True
        except (binascii.Error, ValueError):
            return False
    for cond in conditions:
        updated = cond.get("lastUpdateTime")
        if not updated:
            continue
        age = now - parse_timestamp(updated)
        if cond.get("type") in ("Denied", "Failed") and age > FINISHED_TTL:
            return True
        if cond.get("type") == "Approved" and certificate and age > FINISHED_TTL:
            return True
    return False
