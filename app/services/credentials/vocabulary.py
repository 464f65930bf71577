"""The words of emergency access: constants, step names, the requests, and the refusals it raises.

Every refusal derives from `app.services.errors`, so the web edge maps it to one HTTP status and the
CLI prints its message; nobody reads the text to decide what happened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from app.integrations import pki
from app.integrations.vault import MISSING_KEY_MESSAGE
from app.services.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable

DEFAULT_GROUP = "lifeline:breakglass"
FALLBACK_USER = "lifeline:fallback"
FALLBACK_GROUP = "lifeline:fallback"
FALLBACK_ROLE = "view"
BUILTIN_ROLES = ("cluster-admin", "admin", "edit", "view")
# Lifeline's own identities per cluster (app.services.credentials.identities): the user, the
# ClusterRole and the credential kind share one name each.
ISSUER = "issuer"
READER = "reader"
OWN_PURPOSES = (ISSUER, READER)
OWN_KINDS = ("fallback", ISSUER, READER)
MIN_LIFETIME_SECONDS = 600
LONG_LIFETIME_DAYS = 90
# The product's advice is 90 days or less (a client certificate cannot be revoked), so that is the
# default; the readiness check wants a credential to outlive twice the cluster's disconnect horizon.
DEFAULT_LIFETIME_DAYS = LONG_LIFETIME_DAYS
# cluster-admin stays the default role on purpose: a break-glass credential is the one way to repair a
# cluster whose IAM path is gone, and the usual repairs (cordon and drain nodes, PersistentVolumes,
# webhooks, CRDs, RBAC) are cluster-scoped, outside `admin`/`edit`. Unlike AWS's `system:masters`,
# the binding is revocable; the form offers `view` and any existing ClusterRole for lesser needs.
DEFAULT_ROLE = "cluster-admin"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "outpost-lifeline"
CREDENTIAL_LABEL = "lifeline.outpost/credential-id"
USAGES = ("digital signature", "client auth")
SERVER = "server"
UPLOADED = "uploaded-csr"
ARTIFACTS = ("kubeconfig", "bundle")

ISSUE_STEPS = ("csr_created", "approved", "certificate_issued", "binding_created", "verified", "stored")
STEP_LABELS = {
    "requested": "Request accepted",
    "csr_created": "CertificateSigningRequest created",
    "approved": "CSR approved",
    "certificate_issued": "Certificate issued",
    "binding_created": "ClusterRoleBinding created",
    "verified": "Verified against the cluster",
    "stored": "Stored",
    "binding_checked": "ClusterRoleBinding present",
    "binding_deleted": "ClusterRoleBinding deleted",
    "cleanup": "Clean-up",
}
# The same steps, said as what went wrong when one fails (the inventory and the API's `failed_phrase`).
STEP_FAILURES = {
    "requested": "The request was not accepted",
    "csr_created": "Lifeline could not create the certificate signing request on the cluster",
    "approved": "The certificate signing request was not approved",
    "certificate_issued": "The cluster did not sign the certificate",
    "binding_created": "The ClusterRoleBinding could not be created",
    "verified": "The new certificate did not pass verification against the cluster",
    "stored": "The credential could not be stored",
    "binding_checked": "The ClusterRoleBinding was not found on the cluster",
    "binding_deleted": "The ClusterRoleBinding could not be deleted",
    "cleanup": "Cleaning up after a failed step did not finish",
}


def revoke_notice(
    username: str | None = None,
    group: str | None = None,
    not_after: dt.datetime | None = None,
    remaining: list[str] | None = None,
) -> str:
    """Exactly what revoking leaves: the certificate authenticates until it expires, and any binding
    Lifeline does not manage that names the identity or its group still applies."""
    who = f"as {username}" + (f" in group {group}" if group else "") if username else ""
    until = f"until {not_after:%Y-%m-%d %H:%M} UTC" if not_after else "until it expires"
    text = (
        "Lifeline's ClusterRoleBinding is deleted. The certificate can still authenticate "
        f"{who} {until}: Kubernetes has no revocation for client certificates."
    ).replace("  ", " ")
    if remaining:
        text += f" These bindings not managed by Lifeline still apply to it: {', '.join(remaining)}."
    elif remaining is not None:
        subject = f"{username} or {group}" if group else f"{username}"
        text += f" When revoked, no binding on the cluster named {subject}, so RBAC grants it nothing."
    else:
        text += " Any binding not managed by Lifeline that names the identity or its group still applies."
    return text + " Prefer short lifetimes and renew them."


REVOKE_NOTICE = (
    "The ClusterRoleBinding is deleted, so this identity can no longer do anything RBAC grants it. "
    "The certificate itself stays valid for authentication until it expires: Kubernetes has no "
    "revocation for client certificates. Prefer short lifetimes and renew them."
)


# ------------------------------------------------------------------ refusals


class CredentialNotFound(NotFound):
    """No credential (or cluster) by that id."""


class NotOwner(Forbidden):
    """A responder acting on a credential someone else issued (or an admin-only action)."""


class CredentialConflict(Conflict):
    """The credential's state forbids it: not active, a duplicate identity, a renewal already running."""


class DuplicateCredential(CredentialConflict):
    """The identity already holds a credential on the cluster; `existing_id` names it (for a link)."""

    def __init__(self, message: str, *, existing_id: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.existing_id = existing_id


class NoDataKey(Conflict):
    """Lifeline would have to hold a private key, but no data key is configured (a setting, not input)."""

    def __init__(self, field: str | None = None) -> None:
        super().__init__(MISSING_KEY_MESSAGE, field=field)


class KeyUnavailable(Unavailable):
    """The configured data key does not load, or does not open the sealed key it should."""


class CredentialInputError(InvalidInput):
    """A field of an issue request is wrong; `field` names the form field."""


class ClusterUnreachable(Unavailable):
    """A cluster step could not be done (revoking: the binding could not be deleted)."""


class StepFailed(Exception):
    """Raised inside a run: the step named `step` failed; the run records it and cleans up."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


# ------------------------------------------------------------------ requests and results


@dataclass(frozen=True)
class IssueRequest:
    cluster_pk: int
    username: str
    group: str | None
    cluster_role: str
    lifetime_seconds: int
    key_type: str = pki.KeyType.ecdsa_p256.value
    custody: str = SERVER
    csr_pem: str | None = None
    kind: str = "breakglass"


@dataclass(frozen=True)
class ExpiryWarning:
    credential_id: int
    cluster_name: str
    username: str
    not_after: dt.datetime
    days_left: int
    level: str  # "bad" (7 days or less, or expired) or "warn" (30 days or less)


@dataclass(frozen=True)
class Timing:
    signing_timeout: float = 30.0
    poll_interval: float = 0.2


DEFAULT_TIMING = Timing()


def step_label(step: str | None) -> str:
    """A step in words; a step this vocabulary does not know is named as such, never as a bare id."""
    if not step:
        return ""
    return STEP_LABELS.get(step, f"An unnamed step ({step})")


def failure_phrase(step: str | None) -> str:
    """What went wrong when `step` failed, in words (the inventory never shows `csr_created`)."""
    if not step:
        return "Failed"
    return STEP_FAILURES.get(step, f"A step Lifeline does not name failed ({step})")


def default_identity(username: str) -> str:
    return f"lifeline:{username}"


def lifetime_warning(lifetime_seconds: int) -> str | None:
    days = lifetime_seconds / 86400
    if days > LONG_LIFETIME_DAYS:
        return (
            f"A {days:.0f}-day certificate cannot be revoked: whoever copies it can authenticate until it "
            f"expires (deleting the binding removes its permissions). Prefer {LONG_LIFETIME_DAYS} days or "
            "less and renew."
        )
    return None


def slug(value: str) -> str:
    text = re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-.")
    return text[:60] or "user"


def binding_name_for(username: str) -> str:
    """The ClusterRoleBinding name of an identity: `lifeline:<slug>`, plus a short hash of the exact
    identity whenever the slug had to change it, so `x_y` and `x-y` (or `X-y`) never share a binding."""
    name = username.removeprefix("lifeline:")
    text = slug(name)
    if text != name:
        text = f"{text[:53]}-{hashlib.sha256(username.encode()).hexdigest()[:6]}"
    return f"lifeline:{text}"


def key_context(credential_id: int) -> str:
    """The associated data a credential's sealed key is bound to (a blob copied to another row fails)."""
    return f"credential:{credential_id}"
