"""A failure at any step stops there, says why, and leaves nothing behind on the cluster or in Lifeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.kube.operations import ClusterAccess, ClusterApi, ClusterApiError, ClusterTarget
from app.models import Credential
from app.services.audit import Actor
from app.services.credentials import runs as credentials
from app.services.credentials.vocabulary import IssueRequest
from app.settings import Settings
from tests.fixtures.credentials import SimEnv

ADMIN = Actor(name="admin", role="admin")


class Faulty:
    """Wraps the real cluster API and changes one call (a fault injected at one step)."""

    def __init__(self, inner: ClusterApi, method: str, replacement: Callable[..., Any]) -> None:
        self._inner, self._method, self._replacement = inner, method, replacement

    def __getattr__(self, name: str) -> Any:
        if name == self._method:
            return lambda *args, **kwargs: self._replacement(self._inner, *args, **kwargs)
        return getattr(self._inner, name)


def _raise(message: str) -> Callable[..., Any]:
    def fail(_inner: ClusterApi, *_args: Any, **_kwargs: Any) -> Any:
        raise ClusterApiError(message, 500)

    return fail


def _deny(inner: Any, name: str, **_: Any) -> None:
    inner._conn.deny_csr(name, reason="PolicyDenied", message="denied by a test admission policy")


def _bad_usages(inner: ClusterApi, name: str, pem: str, **kwargs: Any) -> None:
    # The signer refuses to sign server usages: the CSR stays Approved without a certificate.
    inner.create_csr(name, pem, **{**kwargs, "usages": ("client auth", "server auth")})


def _impostor(inner: ClusterApi) -> Any:
    from app.integrations.kube.types import UserIdentity

    return UserIdentity("someone-else", ("system:authenticated",))


CASES = {
    "csr_created": ("issuer", "create_csr", _raise("admission webhook refused the CSR"), "admission webhook"),
    "approved": ("issuer", "approve_csr", _raise("forbidden: cannot approve"), "cannot approve"),
    "certificate_issued:denied": ("issuer", "approve_csr", _deny, "Denied: PolicyDenied"),
    "certificate_issued:never-signed": ("issuer", "create_csr", _bad_usages, "approved but not signed"),
    "binding_created": ("issuer", "create_binding", _raise("quota exceeded"), "quota exceeded"),
    "verified": ("client", "whoami", _impostor, "someone-else"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failure_at_each_step_leaves_nothing_behind(
    case: str, sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    side, method, replacement, message = CASES[case]
    real = credentials.build_access(settings.model_copy(update={"credential_signing_timeout_seconds": 2}))

    def issuer(target: ClusterTarget) -> ClusterApi:
        api = real.issuer(target)
        return Faulty(api, method, replacement) if side == "issuer" else api  # type: ignore[return-value]

    def as_client(target: ClusterTarget, cert: str, key: bytes) -> ClusterApi:
        api = real.as_client(target, cert, key)
        return Faulty(api, method, replacement) if side == "client" else api  # type: ignore[return-value]

    fast = settings.model_copy(update={"credential_signing_timeout_seconds": 2})
    request = IssueRequest(
        cluster_pk=sim_env.cluster_id,
        username="lifeline:admin",
        group="lifeline:breakglass",
        cluster_role="cluster-admin",
        lifetime_seconds=3600,
    )
    credential_id = credentials.start_issue(fast, session_factory, request, ADMIN)
    status = credentials.run_issue(
        fast, session_factory, credential_id, ADMIN, ClusterAccess(issuer, as_client)
    )
    assert status == "failed"
    session.expire_all()
    credential = session.get(Credential, credential_id)
    assert credential is not None
    step = case.split(":")[0]
    assert credential.failed_step == step
    assert message in (credential.error or "")
    assert credential.encrypted_key is None, "a failed credential keeps no usable key"
    states = {e.step: e.state for e in credential.events}
    assert states[step] == "failed"
    assert "stored" not in states
    # Nothing Lifeline created is left on the cluster.
    assert sim_env.csrs() == []
    assert sim_env.bindings() == []
    # And the same identity can be issued again right away.
    again = credentials.start_issue(fast, session_factory, request, ADMIN)
    assert credentials.run_issue(fast, session_factory, again, ADMIN, real) == "active"
