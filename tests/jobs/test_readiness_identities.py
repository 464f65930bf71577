"""The readiness poller during a disconnect: Lifeline's own reader identity keeps every check known,
the words say "cut off from the Region (IAM unavailable), reachable with x509" (never "unreachable"
while the API answers), and a connectivity change polls the Outpost's clusters at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import connectivity, probes, triggers
from app.jobs import readiness as job
from app.models import Outpost
from app.models.readiness import ClusterReadiness
from app.services.credentials import runs
from app.services.readiness.model import Finding, Status
from app.services.readiness.reachability import CUT_OFF, CUT_OFF_LABEL, LOCKED_OUT, UNREACHABLE, reachability
from tests.factories import OUTPOST, minutes, ready_cluster, seed
from tests.fixtures.probes import FakeClock, Site
from tests.fixtures.readiness import PolledCluster

Make = Callable[..., PolledCluster]


def poll(
    target: PolledCluster, session: Session, session_factory: sessionmaker[Session]
) -> dict[str, Finding]:
    job.poll_clusters(target.settings, session_factory)
    session.expire_all()
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None
    return {item["check_id"]: Finding.from_dict(item) for item in state.findings}


def test_the_reader_identity_keeps_the_checks_known_during_a_disconnect(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session], data_key: str
) -> None:
    target = polled_cluster(
        ready_cluster(), credentials=False, data_key=data_key, readiness_poll_concurrency=1
    )
    outcomes = runs.upkeep_identities(target.settings, session_factory)
    assert set(outcomes.values()) == {"issued: active"}, outcomes
    target.sim.disconnect()
    findings = poll(target, session, session_factory)
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None and state.auth_path == "x509" and state.reachable
    assert state.x509_error is None and state.iam_error
    for check in ("spare-capacity", "vpc-cni-warm-ips", "system-masters-binding"):
        assert findings[check].status == Status.passed, (check, findings[check].summary)
    assert findings["fallback-identity"].status == Status.passed  # the reader is the x509 read path
    assert state.facts["skipped"] == {} or all("forbidden" not in v for v in state.facts["skipped"].values())
    reach = reachability(state)
    assert reach.key == CUT_OFF and reach.label == CUT_OFF_LABEL
    assert state.x509_last_ok_at == state.last_polled_at


def test_an_answering_api_is_never_called_unreachable(
    polled_cluster: Make, session: Session, session_factory: sessionmaker[Session]
) -> None:
    """The bug: IAM refused with 401 and no x509 identity made the cluster "unreachable"."""
    target = polled_cluster(ready_cluster(), credentials=False, readiness_poll_concurrency=1)
    poll(target, session, session_factory)
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None and state.x509_last_ok_at is None
    target.sim.disconnect()
    poll(target, session, session_factory)
    session.refresh(state)
    assert state.api_answered is True and not state.reachable
    assert reachability(state).key == LOCKED_OUT
    target.sim.stop()
    poll(target, session, session_factory)
    session.refresh(state)
    assert state.api_answered is False and reachability(state).key == UNREACHABLE


@pytest.fixture
def paused_scheduler() -> Iterator[BackgroundScheduler]:
    """A scheduler that holds jobs without running them, attached as the trigger target."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)
    triggers.attach(scheduler)
    try:
        yield scheduler
    finally:
        triggers.detach(scheduler)
        scheduler.shutdown(wait=False)


def run_enqueued(scheduler: BackgroundScheduler) -> Any:
    queued = scheduler.get_job(triggers.JOB_ID)
    assert queued is not None, "a connectivity change enqueues an immediate readiness poll"
    assert queued.next_run_time <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    scheduler.remove_job(triggers.JOB_ID)
    return queued.func(*queued.args)


def test_a_cloudwatch_state_change_polls_the_outposts_clusters_at_once(
    polled_cluster: Make,
    session: Session,
    session_factory: sessionmaker[Session],
    aws_endpoint: str,
    data_key: str,
    paused_scheduler: BackgroundScheduler,
) -> None:
    target = polled_cluster(
        ready_cluster(), credentials=False, data_key=data_key, readiness_poll_concurrency=1
    )
    runs.upkeep_identities(target.settings, session_factory)
    settings = target.settings.model_copy(
        update={"poll_trailing_window_minutes": 5, "poll_initial_backfill_hours": 0}
    )
    outpost = session.query(Outpost).filter_by(outpost_id=OUTPOST).one()
    outpost.state, outpost.state_since = "CONNECTED", dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    session.commit()
    now = dt.datetime.now(dt.UTC)
    t0 = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    seed(aws_endpoint, minutes(t0, [1, 1, 0, 0, 0], OUTPOST))
    target.sim.disconnect()

    results = connectivity.poll_connectivity(settings, session_factory, now=now)
    assert results[0].changed == (outpost.id,)
    assert session.get(ClusterReadiness, target.cluster.id) is None  # not polled yet
    outcomes = run_enqueued(paused_scheduler)
    assert outcomes == {f"{target.cluster.region}/{target.cluster.name}": "ok"}
    session.expire_all()
    assert session.get_one(Outpost, outpost.id).state == "DISCONNECTED"
    state = session.get(ClusterReadiness, target.cluster.id)
    assert state is not None and reachability(state).key == CUT_OFF
    # No change, no extra poll.
    connectivity.poll_connectivity(settings, session_factory, now=now)
    assert paused_scheduler.get_job(triggers.JOB_ID) is None


def test_a_site_probe_verdict_change_polls_the_outposts_clusters_at_once(
    probed_site: Site,
    session: Session,
    session_factory: sessionmaker[Session],
    probe_clock: FakeClock,
    paused_scheduler: BackgroundScheduler,
) -> None:
    settings = probed_site.settings(probe_interval_seconds=10, probe_hysteresis=2, probe_confirm_seconds=2)
    runner = probes.Runner.from_settings(settings)
    probes.probe_cycle(settings, session_factory, runner, clock=probe_clock, sleep=probe_clock.sleep)
    if paused_scheduler.get_job(triggers.JOB_ID) is not None:  # the first verdict is a change too
        run_enqueued(paused_scheduler)
    probed_site.sim.disconnect()
    probe_clock.advance(10)
    result = probes.probe_cycle(settings, session_factory, runner, clock=probe_clock, sleep=probe_clock.sleep)
    assert result.changed == frozenset({probed_site.outpost.id})
    outcomes = run_enqueued(paused_scheduler)
    assert outcomes == {f"{probed_site.cluster.region}/{probed_site.cluster.name}": "ok"}
    session.expire_all()
    state = session.get(ClusterReadiness, probed_site.cluster.id)
    assert state is not None and state.auth_path == "x509"
    assert reachability(state).key == CUT_OFF


def test_without_a_scheduler_a_change_is_only_logged(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    from tests.conftest import make_settings

    assert triggers.outposts_changed(make_settings("sqlite://"), session_factory, [], "nothing") == []
