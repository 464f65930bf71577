"""Who a credential may be: the group policy and the effective-rights check.

The identity a credential carries is decided by policy, not by the requester. A client certificate's
organisation (O) becomes a Kubernetes group, and every binding naming that group applies to the
certificate until it expires: revoking deletes only Lifeline's own binding. So:

- a group must be on the admin-managed allow-list (the Credential policy page, `groups.py`; until an
  admin saves one, `LIFELINE_CREDENTIAL_ALLOWED_GROUPS`, default Lifeline's own break-glass group only);
- a group already named by any (Cluster)RoleBinding Lifeline does not manage is refused, naming the
  binding, before any certificate exists;
- after issuing, the new identity's effective rights are checked for a few sentinel actions: with
  SelfSubjectAccessReviews as the credential when Lifeline holds its key, with SubjectAccessReviews as
  the issuer (the certificate's CN and O values, plus system:authenticated) for an uploaded CSR; any
  right its ClusterRole does not grant fails the issue (and the run cleans up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.services.credentials.vocabulary import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    CredentialInputError,
    StepFailed,
)


@dataclass(frozen=True)
class Sentinel:
    """An action whose grant must come from the credential's ClusterRole and nowhere else."""

    verb: str
    resource: str
    api_group: str = ""

    def __str__(self) -> str:
        where = f"{self.resource}.{self.api_group}" if self.api_group else self.resource
        return f"{self.verb} {where}"


SENTINELS = (
    Sentinel("*", "*", "*"),
    Sentinel("create", "clusterrolebindings", "rbac.authorization.k8s.io"),
    Sentinel("escalate", "clusterroles", "rbac.authorization.k8s.io"),
    Sentinel("impersonate", "users"),
    Sentinel("get", "secrets"),
    Sentinel("create", "pods"),
)


AUTHENTICATED = "system:authenticated"


class RbacReader(Protocol):
    def rbac_bindings(self) -> list[dict[str, Any]]: ...

    def cluster_role_rules(self, name: str) -> list[dict[str, Any]] | None: ...


class RightsChecker(Protocol):
    def can_i(self, verb: str, resource: str, *, group: str = "") -> bool: ...


def check_allowed_group(group: str | None, allowed: Iterable[str]) -> None:
    """Refuse a group that is not on the allow-list (`groups.allowed_groups`)."""
    if group is None:
        return
    allowed = list(allowed)
    if group not in allowed:
        listed = ", ".join(allowed) if allowed else "none"
        raise CredentialInputError(
            f"group {group!r} is not on the allowed list ({listed}); an admin decides which groups a "
            "credential may carry, on the Credential policy page (LIFELINE_CREDENTIAL_ALLOWED_GROUPS "
            "until one is saved there)",
            field="group",
        )


def is_managed(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def foreign_bindings_naming(
    bindings: Iterable[dict[str, Any]], group: str, *, kind: str = "Group"
) -> list[str]:
    """`Kind name` (namespace/name for RoleBindings) of every unmanaged binding with subject `group`
    (of `kind` Group, or User)."""
    found = []
    for obj in bindings:
        if is_managed(obj):
            continue
        subjects = obj.get("subjects") or []
        if any(s.get("kind") == kind and s.get("name") == group for s in subjects):
            meta = obj.get("metadata") or {}
            role = (obj.get("roleRef") or {}).get("name", "?")
            where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
            found.append(f"{obj.get('kind', 'binding')} {where}{meta.get('name', '?')} (→ {role})")
    return sorted(found)


def check_group_unbound(api: RbacReader, group: str | None, cluster: str) -> str:
    """Raise StepFailed when a binding Lifeline does not manage names `group`; returns the note."""
    if group is None:
        return "no group requested."
    foreign = foreign_bindings_naming(api.rbac_bindings(), group)
    if foreign:
        raise StepFailed(
            "csr_created",
            f"group {group!r} is refused on {cluster}: {', '.join(foreign)} already binds it and is not "
            "managed by Lifeline, so the certificate would carry those rights and revoking could not take "
            "them away; request no group or another one",
        )
    return f"group {group} is named by no binding outside Lifeline."


def _matches(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def role_grants(rules: list[dict[str, Any]], sentinel: Sentinel) -> bool:
    """Does a ClusterRole's rule list grant the sentinel action (cluster-wide)?"""
    for rule in rules:
        verbs = list(rule.get("verbs") or [])
        resources = list(rule.get("resources") or [])
        groups = list(rule.get("apiGroups") or [])
        if sentinel.verb == "*":
            if "*" in verbs and "*" in resources and "*" in groups:
                return True
            continue
        if (
            _matches(verbs, sentinel.verb)
            and _matches(resources, sentinel.resource)
            and _matches(groups, sentinel.api_group)
        ):
            return True
    return False


def check_effective_rights(
    client: RightsChecker, rules: list[dict[str, Any]] | None, cluster_role: str
) -> str:
    """Ask the cluster, as the new credential, about each sentinel; StepFailed on a right its ClusterRole
    does not grant (a group binding, an aggregated role, a wildcard somewhere else)."""
    _compare(lambda s: client.can_i(s.verb, s.resource, group=s.api_group), rules, cluster_role)
    return f"effective rights match ClusterRole {cluster_role} ({len(SENTINELS)} sentinel checks)."


class SubjectRightsChecker(Protocol):
    def subject_can(
        self, user: str, groups: Sequence[str], verb: str, resource: str, *, group: str = ""
    ) -> bool: ...


def subject_groups(organizations: Iterable[str]) -> tuple[str, ...]:
    """The groups the API server gives a client certificate: its O values and system:authenticated."""
    groups = [o for o in organizations if o != AUTHENTICATED]
    return (*groups, AUTHENTICATED)


def check_subject_rights(
    issuer: SubjectRightsChecker,
    user: str,
    groups: Sequence[str],
    rules: list[dict[str, Any]] | None,
    cluster_role: str,
) -> str:
    """For a certificate whose key Lifeline never holds (an uploaded CSR): ask as the issuer, with a
    SubjectAccessReview per sentinel for the certificate's user and groups; the same verdict as
    `check_effective_rights`."""
    _compare(
        lambda s: issuer.subject_can(user, groups, s.verb, s.resource, group=s.api_group),
        rules,
        cluster_role,
    )
    return (
        f"effective rights of {user} ({', '.join(groups)}) match ClusterRole {cluster_role} "
        f"({len(SENTINELS)} SubjectAccessReviews as the issuer)."
    )


def _compare(allowed: Callable[[Sentinel], bool], rules: list[dict[str, Any]] | None, role: str) -> None:
    if rules is None:
        raise StepFailed("verified", f"ClusterRole {role} could not be read to compare its rights")
    extra = [str(s) for s in SENTINELS if allowed(s) and not role_grants(rules, s)]
    if extra:
        raise StepFailed(
            "verified",
            f"the credential can do more than ClusterRole {role} grants ({'; '.join(extra)}): "
            "another binding applies to this identity or its group",
        )
