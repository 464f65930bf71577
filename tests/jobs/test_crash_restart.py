"""`kill -9` of a real server process at each issuing step and mid-poll, then a restart (issue 11): no
credential left `issuing` and no poll run left `running` once the reconciliation has run, nothing on
the simulated cluster that Lifeline does not track (CSRs, ClusterRoleBindings with its label), the
same identities can be issued again, and the samples are CloudWatch's minutes, each once.

tests/support/crash_server.py stops the server dead right after the cluster (or CloudWatch) call
that completes the step, so the kill lands exactly there. Runs on SQLite, or on PostgreSQL when
LIFELINE_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from app.db import create_db_engine, make_session_factory
from app.integrations.kube import client as kube
from app.integrations.vault import generate_data_key
from app.models import Cluster, ConnectedSample, Credential, Outpost, PollRun
from app.services.accounts.tokens import create_token
from app.services.audit import Actor
from app.services.credentials.vocabulary import CREDENTIAL_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from tests.conftest import DatabaseServer, create_account, free_port
from tests.factories import minutes, seed
from tests.fixtures.credentials import MANAGED
from tests.support.crash_server import STEPS

POLL = 10
OP = "op-00000000000c0ffee"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


class Servers:
    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, point: str | None = None, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        n = len(self.procs)
        command = [sys.executable, "-m"]
        if point:
            command += ["tests.support.crash_server", point, str(self.tmp / f"reached-{n}")]
        else:
            command += ["app.cli"]
        command += ["serve", "--host", "127.0.0.1", "--port", str(port), *args]
        with (self.tmp / f"server-{n}.log").open("wb") as log:
            proc = subprocess.Popen(
                command, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(lambda: _healthy(base), 90, f"server {n} up", proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log(n)[-3000:]}") from None
        return base, proc

    def reached(self, n: int) -> Path:
        return self.tmp / f"reached-{n}"

    def log(self, n: int) -> str:
        return (self.tmp / f"server-{n}.log").read_text()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(predicate: Callable[[], Any], timeout: float, what: str, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited while waiting for {what}: {proc.args}"
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    made = Servers({}, tmp_path)
    yield made
    made.stop()


def _issue(base: str, token: str, cluster: str, identity: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/clusters/{cluster}/credentials",
        json={"identity": identity, "lifetime_seconds": 900},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )


def _doomed_issue(base: str, token: str, identity: str) -> None:
    """The request the kill interrupts: it gets no answer."""
    with contextlib.suppress(httpx.HTTPError):
        _issue(base, token, "crash-sim", identity)


def _statuses(engine: Engine) -> dict[str, str]:
    """The test's credentials; Lifeline's own issuer and reader identities, which the start-up
    upkeep may or may not have issued by now, are not what the kills interrupt."""
    query = select(Credential.username, Credential.status).where(Credential.kind == "breakglass")
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def _test_objects(admin: Any, engine: Engine, api_version: str, plural: str) -> list[str]:
    """Names of the CSRs or ClusterRoleBindings on the cluster, except those labelled with one of
    Lifeline's own identity credentials (the start-up upkeep may issue those at any time)."""
    with engine.connect() as conn:
        own = {str(i) for i in conn.scalars(select(Credential.id).where(Credential.kind != "breakglass"))}
    names = []
    for obj in admin.iter_objects(api_version, plural):
        labels = obj["metadata"].get("labels") or {}
        if plural == "clusterrolebindings" and labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            continue
        if labels.get(CREDENTIAL_LABEL) not in own:
            names.append(str(obj["metadata"]["name"]))
    return names


def test_kill_9_at_each_issuing_step_and_mid_poll_then_restart_leaves_nothing_stuck(
    database_server: DatabaseServer,
    simulated_cluster: Any,
    aws_endpoint: str,
    servers: Servers,
) -> None:
    url = database_server.create_migrated("crash")
    engine = create_db_engine(url)
    sim = simulated_cluster(name="crash-sim", endpoint_hostname="abc123.gr7.us-west-2.eks.amazonaws.com")
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    seeded = {start + dt.timedelta(minutes=i) for i in range(31)}
    seed(aws_endpoint, minutes(start, [1.0 if i % 7 else 0.0 for i in range(31)], OP))
    with make_session_factory(engine)() as db:
        db.add(
            Cluster(
                name="crash-sim",
                region="us-west-2",
                endpoint=sim.url,
                certificate_authority=sim.ca_data,
                cluster_uid=sim.cluster_uid,
                health_issues=[],
            )
        )
        db.add(Outpost(outpost_id=OP, name="Crash site", region="us-west-2"))
        user = create_account(db, "oncall", "admin")
        token, _ = create_token(db, user, name="crash", expires_in_days=None, actor=Actor(name="test"))
        db.commit()
    servers.env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    servers.env.update(
        PYTHONUNBUFFERED="1",
        LIFELINE_DATABASE_URL=url,
        LIFELINE_DATA_KEY=generate_data_key(),
        LIFELINE_AWS_ENDPOINT_URL=aws_endpoint,
        LIFELINE_AWS_REGIONS='["us-west-2"]',
        LIFELINE_AWS_MAX_ATTEMPTS="1",
        LIFELINE_POLL_INTERVAL_SECONDS=str(POLL),
        LIFELINE_CREDENTIAL_SIGNING_TIMEOUT_SECONDS="10",
    )
    cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    admin = kube.connect(sim.url, sim.ca_pem, kube.KubeAuth.x509(cert, key))
    try:
        # 1. One server per step, stopped dead right after that step reached the cluster, then kill -9.
        for n, step in enumerate(STEPS):
            base, proc = servers.start("--no-scheduler", point=step)
            caller = threading.Thread(target=_doomed_issue, args=(base, token, f"lifeline:{step}"))
            caller.daemon = True
            caller.start()
            _wait(servers.reached(n).exists, 60, f"the {step} step", proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert set(_statuses(engine).values()) == {"issuing"}, _statuses(engine)
        csrs = list(admin.iter_objects("certificates.k8s.io/v1", "certificatesigningrequests"))
        assert csrs and admin.list_cluster_role_bindings(label_selector=MANAGED), "the crashes left objects"

        # 2. A server with its scheduler, stopped dead mid-poll (CloudWatch answered, nothing stored).
        poll_n = len(STEPS)
        _base, proc = servers.start(point="poll", LIFELINE_CREDENTIAL_STALE_SECONDS="86400")
        _wait(servers.reached(poll_n).exists, 60, "the connectivity poll", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        with engine.connect() as conn:
            running = conn.scalar(
                select(func.count()).select_from(PollRun).where(PollRun.outcome == "running")
            )
        assert running, "the kill left a poll run running (else this proves nothing)"

        # 3. Restart: the real server, credentials stale after 5 s.
        base, proc = servers.start(LIFELINE_CREDENTIAL_STALE_SECONDS="5")

        def settled() -> bool:
            with engine.connect() as conn:
                stuck = conn.scalar(
                    select(func.count())
                    .select_from(PollRun)
                    .where(
                        PollRun.outcome == "running",
                        PollRun.finished_at.is_(None),
                        PollRun.job == "connectivity",
                    )
                )
            return "issuing" not in _statuses(engine).values() and stuck == 0

        _wait(settled, 6 * POLL, "reconciliation after the restart", proc)
        statuses = _statuses(engine)
        assert statuses == {f"lifeline:{step}": "failed" for step in STEPS}
        with engine.connect() as conn:
            query = select(PollRun.id, PollRun.outcome).where(PollRun.job == "connectivity")
            outcomes = dict(conn.execute(query).all())
        assert "interrupted" in outcomes.values()
        # Nothing on the cluster that Lifeline does not track (its own identities' objects aside).
        assert _test_objects(admin, engine, "certificates.k8s.io/v1", "certificatesigningrequests") == []
        assert _test_objects(admin, engine, "rbac.authorization.k8s.io/v1", "clusterrolebindings") == []

        # The same identities can be issued again, and what is on the cluster is what is tracked.
        for step in STEPS:
            answer = _issue(base, token, "crash-sim", f"lifeline:{step}")
            assert answer.status_code == 201, answer.text
        with engine.connect() as conn:
            active = conn.scalar(
                select(func.count())
                .select_from(Credential)
                .where(Credential.status == "active", Credential.kind == "breakglass")
            )
        assert active == len(STEPS)
        bindings = _test_objects(admin, engine, "rbac.authorization.k8s.io/v1", "clusterrolebindings")
        assert len(bindings) == len(STEPS)

        # The restarted poller filled the history: CloudWatch's minutes, each once.
        def stored() -> list[dt.datetime]:
            with engine.connect() as conn:
                return list(conn.scalars(select(ConnectedSample.ts)))

        _wait(lambda: len(stored()) >= len(seeded) - 2, 6 * POLL, "the samples", proc)
        samples = [ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts for ts in stored()]
        assert len(samples) == len(set(samples))
        assert set(samples) <= seeded
        assert "Traceback" not in servers.log(poll_n + 1), servers.log(poll_n + 1)[-3000:]
    finally:
        admin.close()
        engine.dispose()
