"""A crash at any issuing step (the process dies: nothing after the last committed step runs) leaves a
row `issuing` and objects on the cluster; reconciliation removes what Lifeline created, by its labels,
ends the row failed with the reason, and the same identity can be issued again (issue 11)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.kube.operations import ClusterAccess, ClusterApi, ClusterApiError, ClusterTarget
from app.jobs import recovery
from app.models import Credential, PollRun
from app.models.base import utcnow
from app.services.audit import Actor
from app.services.credentials import reconcile, runs
from app.services.credentials.vocabulary import IssueRequest
from app.settings import Settings
from tests.fixtures.credentials import SimEnv

ADMIN = Actor(name="admin", role="admin")


class Crash(BaseException):
    """The process dying: not an Exception, so no handler marks the run failed."""


class CrashAfter:
    """The real cluster API, but the process 'dies' right after `method` reached the cluster."""

    def __init__(self, inner: ClusterApi, method: str) -> None:
        self._inner, self._method = inner, method

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            attr(*args, **kwargs)
            raise Crash(name)

        return call


# step the crash interrupts -> (side, method after which the process dies)
CRASHES = {
    "csr_created": ("issuer", "create_csr"),
    "approved": ("issuer", "approve_csr"),
    "certificate_issued": ("issuer", "read_csr"),
    "binding_created": ("issuer", "create_binding"),
    "verified": ("client", "whoami"),
}


def _access(settings: Settings, side: str, method: str) -> ClusterAccess:
    real = runs.build_access(settings)

    def issuer(target: ClusterTarget) -> ClusterApi:
        api = real.issuer(target)
        return CrashAfter(api, method) if side == "issuer" else api  # type: ignore[return-value]

    def as_client(target: ClusterTarget, cert: str, key: bytes) -> ClusterApi:
        api = real.as_client(target, cert, key)
        return CrashAfter(api, method) if side == "client" else api  # type: ignore[return-value]

    return ClusterAccess(issuer, as_client)


@pytest.mark.parametrize("step", list(CRASHES))
def test_crash_at_each_issuing_step_is_reconciled(
    step: str, sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    fast = settings.model_copy(
        update={"credential_signing_timeout_seconds": 5, "credential_stale_seconds": 60}
    )
    request = IssueRequest(
        cluster_pk=sim_env.cluster_id,
        username="lifeline:oncall",
        group="lifeline:breakglass",
        cluster_role="cluster-admin",
        lifetime_seconds=3600,
    )
    credential_id = runs.start_issue(fast, session_factory, request, ADMIN)
    with pytest.raises(Crash):
        runs.run_issue(fast, session_factory, credential_id, ADMIN, _access(fast, *CRASHES[step]))
    session.expire_all()
    assert session.get(Credential, credential_id).status == "issuing"  # type: ignore[union-attr]
    left = sim_env.csrs() + sim_env.bindings()
    assert left, "the crash left something on the cluster (else this test proves nothing)"

    # Not yet stale: a run that is merely slow is left alone.
    assert recovery.reconcile_credentials(fast, session_factory) == []
    later = utcnow() + dt.timedelta(seconds=fast.credential_stale_seconds + 1)
    [result] = recovery.reconcile_credentials(fast, session_factory, now=later)
    assert result.outcome == "failed"

    session.expire_all()
    credential = session.get(Credential, credential_id)
    assert credential is not None and credential.status == "failed"
    assert credential.failed_step == step
    assert "interrupted" in (credential.error or "") and "Issue the credential again" in (
        credential.error or ""
    )
    assert credential.encrypted_key is None
    assert not [e for e in credential.events if e.state == "running"]
    # Nothing Lifeline does not track is left on the cluster.
    assert sim_env.csrs() == [] and sim_env.bindings() == []
    # The person can issue again.
    again = runs.start_issue(fast, session_factory, request, ADMIN)
    assert runs.run_issue(fast, session_factory, again, ADMIN) == "active"


def test_unreachable_cluster_keeps_the_row_until_cleanup_can_happen(
    sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    fast = settings.model_copy(update={"credential_signing_timeout_seconds": 5})
    request = IssueRequest(
        cluster_pk=sim_env.cluster_id,
        username="lifeline:oncall",
        group=None,
        cluster_role="view",
        lifetime_seconds=3600,
    )
    credential_id = runs.start_issue(fast, session_factory, request, ADMIN)
    with pytest.raises(Crash):
        runs.run_issue(fast, session_factory, credential_id, ADMIN, _access(fast, "issuer", "create_binding"))

    def unreachable(_target: ClusterTarget) -> ClusterApi:
        raise ClusterApiError("GET /version: the API server is unreachable", 0)

    with session_factory() as db:
        outcome = reconcile.reconcile_credential(db, credential_id, ClusterAccess(unreachable, unreachable))  # type: ignore[arg-type]
        db.commit()
    assert outcome is not None and outcome.outcome == "pending"
    session.expire_all()
    credential = session.get(Credential, credential_id)
    assert credential is not None and credential.status == "issuing"
    assert "once it can reach it" in (credential.error or "")
    assert sim_env.bindings(), "the binding is still there, so the row must stay tracked"


def test_poll_runs_left_running_are_closed_as_interrupted(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    started = utcnow() - dt.timedelta(minutes=3)
    session.add_all(
        [
            PollRun(job="connectivity", scope="us-west-2", started_at=started, outcome="running"),
            PollRun(
                job="discovery", scope="us-west-2", started_at=started, finished_at=started, outcome="ok"
            ),
        ]
    )
    session.commit()
    assert recovery.close_interrupted_runs(session_factory) == 1
    session.expire_all()
    outcomes = {r.job: (r.outcome, r.finished_at is not None) for r in session.scalars(select(PollRun))}
    assert outcomes == {"connectivity": ("interrupted", True), "discovery": ("ok", True)}
