"""RBAC as the API server evaluates it: bootstrap roles, bindings for users and groups, system:masters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifeline_simulator.store import Store

SUPERUSER_GROUP = "system:masters"
AUTHENTICATED = "system:authenticated"

_ALL_NAMESPACED = [
    "pods",
    "pods/log",
    "pods/exec",
    "services",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "persistentvolumeclaims",
    "deployments",
    "deployments/scale",
    "statefulsets",
    "statefulsets/scale",
    "daemonsets",
    "replicasets",
    "horizontalpodautoscalers",
    "ingresses",
    "events",
    "jobs",
    "cronjobs",
]
_WORKLOAD_GROUPS = ["", "apps", "autoscaling", "networking.k8s.io", "batch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_READ = ["get", "list", "watch"]

BOOTSTRAP_CLUSTER_ROLES: dict[str, list[dict[str, Any]]] = {
    "cluster-admin": [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
    ],
    "admin": [
        {"apiGroups": _WORKLOAD_GROUPS, "resources": _ALL_NAMESPACED, "verbs": _READ + _WRITE},
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles", "rolebindings"],
            "verbs": _READ + _WRITE,
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ},
    ],
    "edit": [
        {"apiGroups": _WORKLOAD_GROUPS, "resources": _ALL_NAMESPACED, "verbs": _READ + _WRITE},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ},
    ],
    "view": [
        {
            "apiGroups": _WORKLOAD_GROUPS,
            "resources": [r for r in _ALL_NAMESPACED if r not in ("secrets", "pods/exec")],
            "verbs": _READ,
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ},
    ],
    "system:basic-user": [
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            "verbs": ["create"],
        },
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
    ],
    "system:discovery": [
        {
            "nonResourceURLs": [
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ],
            "verbs": ["get"],
        }
    ],
}
BOOTSTRAP_BINDINGS = {
    "cluster-admin": ("cluster-admin", SUPERUSER_GROUP),
    "system:basic-user": ("system:basic-user", AUTHENTICATED),
    "system:discovery": ("system:discovery", AUTHENTICATED),
}
_RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, as the authorizer sees it."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def install_bootstrap_policy(store: Store) -> None:
    """The default ClusterRoles and ClusterRoleBindings every cluster has, labelled rbac-defaults."""
    from lifeline_simulator.resources import BY_GROUP_PLURAL

    roles, bindings = (
        BY_GROUP_PLURAL[(_RBAC, "clusterroles")],
        BY_GROUP_PLURAL[(_RBAC, "clusterrolebindings")],
    )
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    for name, rules in BOOTSTRAP_CLUSTER_ROLES.items():
        if store.find(roles, "", name) is None:
            store.load(
                roles,
                {
                    "apiVersion": f"{_RBAC}/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": name, "labels": dict(labels)},
                    "rules": rules,
                },
            )
    for name, (role, group) in BOOTSTRAP_BINDINGS.items():
        if store.find(bindings, "", name) is None:
            store.load(
                bindings,
                {
                    "apiVersion": f"{_RBAC}/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": name, "labels": dict(labels)},
                    "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": role},
                    "subjects": [{"apiGroup": _RBAC, "kind": "Group", "name": group}],
                },
            )


def _matches(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]


def _resource_matches(rule_resources: list[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for item in rule_resources:
        if item in ("*", combined):
            return True
        if subresource and item == f"*/{subresource}":
            return True
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    if not _matches(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.is_resource:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1])):
                return True
        return False
    if not _matches(rule.get("apiGroups"), attrs.group):
        return False
    if not _resource_matches(rule.get("resources") or [], attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _subject_matches(subject: dict[str, Any], user: str, groups: tuple[str, ...], namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace') or namespace}:{name}"
    return False


class Authorizer:
    """Evaluates RBAC over the objects currently in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _types(self) -> tuple[Any, Any, Any, Any]:
        from lifeline_simulator.resources import BY_GROUP_PLURAL

        return (
            BY_GROUP_PLURAL[(_RBAC, "clusterroles")],
            BY_GROUP_PLURAL[(_RBAC, "clusterrolebindings")],
            BY_GROUP_PLURAL[(_RBAC, "roles")],
            BY_GROUP_PLURAL[(_RBAC, "rolebindings")],
        )

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str) -> list[dict[str, Any]]:
        """Every rule granted to the subject cluster-wide, plus in `namespace` when given."""
        cluster_roles, cluster_bindings, roles, bindings = self._types()
        rules: list[dict[str, Any]] = []

        def role_rules(ref: dict[str, Any], ns: str) -> list[dict[str, Any]]:
            if ref.get("kind") == "ClusterRole":
                role = self.store.find(cluster_roles, "", ref.get("name", ""))
            elif ref.get("kind") == "Role" and ns:
                role = self.store.find(roles, ns, ref.get("name", ""))
            else:
                role = None
            return list((role or {}).get("rules") or [])

        for binding in self.store.list(cluster_bindings, None).items:
            if any(_subject_matches(s, user, groups, "") for s in binding.get("subjects") or []):
                rules.extend(role_rules(binding.get("roleRef") or {}, ""))
        if namespace:
            for binding in self.store.list(bindings, namespace).items:
                if any(_subject_matches(s, user, groups, namespace) for s in binding.get("subjects") or []):
                    rules.extend(role_rules(binding.get("roleRef") or {}, namespace))
        return rules

    def allowed(self, user: str, groups: tuple[str, ...], attrs: Attributes) -> bool:
        if SUPERUSER_GROUP in groups:
            return True
        return any(rule_allows(rule, attrs) for rule in self.rules_for(user, groups, attrs.namespace))


def _rule_attributes(rule: dict[str, Any], namespace: str) -> list[Attributes]:
    """Every (verb, group, resource, name) a rule grants, for the escalation check."""
    if rule.get("nonResourceURLs"):
        return [Attributes(verb=v, path=u) for v in rule.get("verbs") or [] for u in rule["nonResourceURLs"]]
    out = []
    for verb in rule.get("verbs") or []:
        for group in rule.get("apiGroups") or [""]:
            for item in rule.get("resources") or []:
                resource, _, subresource = str(item).partition("/")
                for name in rule.get("resourceNames") or [""]:
                    out.append(Attributes(verb, group, resource, subresource, namespace, name))
    return out


def escalation_refusal(
    authorizer: Authorizer, user: str, groups: tuple[str, ...], obj: dict[str, Any], kind: str, namespace: str
) -> str | None:
    """Why kube-apiserver's RBAC escalation check refuses this role or binding write, or None.

    A binding needs `bind` on the role it references, or the writer already holds every rule of
    that role; a role needs `escalate` on roles, or the writer holds every rule it grants.
    """
    if SUPERUSER_GROUP in groups:
        return None
    cluster_roles, _, roles, _ = authorizer._types()
    resource = "clusterroles" if kind in ("ClusterRole", "ClusterRoleBinding") else "roles"
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        ref = obj.get("roleRef") or {}
        role_name = str(ref.get("name", ""))
        ref_kind = ref.get("kind")
        bind_resource = "clusterroles" if ref_kind == "ClusterRole" else "roles"
        if authorizer.allowed(
            user, groups, Attributes("bind", _RBAC, bind_resource, "", namespace, role_name)
        ):
            return None
        if ref_kind == "ClusterRole":
            role = authorizer.store.find(cluster_roles, "", role_name)
        else:
            role = authorizer.store.find(roles, namespace, role_name) if namespace else None
        rules = list((role or {}).get("rules") or [])
        verb = "bind"
    else:
        role_name = str((obj.get("metadata") or {}).get("name", ""))
        if authorizer.allowed(
            user, groups, Attributes("escalate", _RBAC, resource, "", namespace, role_name)
        ):
            return None
        rules = list(obj.get("rules") or [])
        bind_resource, verb = resource, "escalate"
    wanted = [a for rule in rules for a in _rule_attributes(rule, namespace)]
    if all(authorizer.allowed(user, groups, a) for a in wanted):
        return None
    return (
        f'user "{user}" (groups={list(groups)}) is attempting to grant RBAC permissions not currently held '
        f'and has no "{verb}" permission on {bind_resource} "{role_name}"'
    )
