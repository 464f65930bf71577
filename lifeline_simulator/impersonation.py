"""`Impersonate-*` headers, authorised as kube-apiserver's impersonation filter does.

Each requested attribute needs the `impersonate` verb: `users` (or `serviceaccounts` in the account's
namespace for `system:serviceaccount:NS:NAME`), `groups`, `uids` and `userextras/KEY` in
`authentication.k8s.io`. A refusal is the filter's 403 (`users "x" is forbidden: User "y" cannot
impersonate resource "users" in API group "" at the cluster scope`); success replaces the identity for
authorization and for the reviews (`auth can-i --as`, `auth whoami --as`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import unquote

from lifeline_simulator.authn import Identity
from lifeline_simulator.errors import ApiError, forbidden
from lifeline_simulator.rbac import Attributes

USER, GROUP, UID, EXTRA = "impersonate-user", "impersonate-group", "impersonate-uid", "impersonate-extra-"
SA_PREFIX = "system:serviceaccount:"

Allowed = Callable[[Identity, Attributes], bool]


def requested(headers: Sequence[tuple[str, str]]) -> bool:
    return any(k.lower() in (USER, GROUP, UID) or k.lower().startswith(EXTRA) for k, _ in headers)


def impersonate(identity: Identity, headers: Sequence[tuple[str, str]], allowed: Allowed) -> Identity:
    """The identity the request acts as, or ApiError 403/400 as the API server answers."""
    users = [v.strip() for k, v in headers if k.lower() == USER]
    groups = [v.strip() for k, v in headers if k.lower() == GROUP]
    uids = [v.strip() for k, v in headers if k.lower() == UID]
    extra: dict[str, list[str]] = {}
    for key, value in headers:
        if key.lower().startswith(EXTRA):
            extra.setdefault(unquote(key[len(EXTRA) :]).lower(), []).append(value.strip())
    if not users or not users[0]:
        raise ApiError(
            500,
            "Internal error occurred: requested impersonation of groups, uid or extra without "
            "impersonating a user",
        )
    user = users[0]

    def need(attrs: Attributes, name: str) -> None:
        if not allowed(identity, attrs):
            raise forbidden(
                identity.user,
                "impersonate",
                attrs.resource if not attrs.subresource else f"{attrs.resource}/{attrs.subresource}",
                attrs.group,
                attrs.namespace or None,
                name,
            )

    implied: list[str] = []
    if user.startswith(SA_PREFIX) and user.count(":") == 3:
        namespace, name = user[len(SA_PREFIX) :].split(":")
        need(Attributes("impersonate", "", "serviceaccounts", namespace=namespace, name=name), name)
        if not groups:
            implied = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        need(Attributes("impersonate", "", "users", name=user), user)
    for group in groups:
        need(Attributes("impersonate", "", "groups", name=group), group)
    for uid in uids:
        need(Attributes("impersonate", "authentication.k8s.io", "uids", name=uid), uid)
    for key, values in extra.items():
        for value in values:
            need(
                Attributes("impersonate", "authentication.k8s.io", "userextras", key, name=value),
                value,
            )
    all_groups = [*groups, *implied]
    if user != "system:anonymous" and "system:authenticated" not in all_groups:
        all_groups.append("system:authenticated")
    return Identity(user, tuple(all_groups), uids[0] if uids else "", extra, method="impersonated")
