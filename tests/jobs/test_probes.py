"""The probe job against the simulator and moto: a switch detected within interval + hysteresis,
one failed probe changes nothing, two vantages sharing a database keep their own views, and
site-observed stretches are reconciled with CloudWatch's datapoints."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations import probes as probe_kinds
from app.jobs import probes
from app.models import ConnectedSample, ProbeResult, SiteStretch, SiteView
from app.services.connectivity import site
from tests.fixtures.probes import FakeClock, Site


def _cycle(
    probed_site: Site, session_factory: sessionmaker[Session], probe_clock: FakeClock, runner: probes.Runner
) -> probes.CycleResult:
    return probes.probe_cycle(
        runner.settings, session_factory, runner, clock=probe_clock, sleep=probe_clock.sleep
    )


def _view(session: Session, vantage: str, outpost_pk: int) -> SiteView:
    session.expire_all()
    return session.scalars(
        select(SiteView).where(SiteView.vantage == vantage, SiteView.outpost_pk == outpost_pk)
    ).one()


def test_switching_off_is_detected_within_interval_plus_hysteresis(
    probed_site: Site, session_factory: sessionmaker[Session], session: Session, probe_clock: FakeClock
) -> None:
    settings = probed_site.settings(probe_interval_seconds=10, probe_hysteresis=2, probe_confirm_seconds=2)
    runner = probes.Runner.from_settings(settings)
    _cycle(probed_site, session_factory, probe_clock, runner)
    view = _view(session, settings.vantage, probed_site.outpost.id)
    assert view.state == "CONNECTED"
    assert "IAM accepted by plant7-local" in view.evidence

    switched_at = probe_clock.now
    probed_site.sim.disconnect()
    probe_clock.advance(settings.probe_interval_seconds)  # the next cycle, at worst a whole interval later
    result = _cycle(probed_site, session_factory, probe_clock, runner)
    view = _view(session, settings.vantage, probed_site.outpost.id)
    assert view.state == "DISCONNECTED"
    assert result.confirmations == 1 and probe_clock.slept == [2]
    detected = (probe_clock.now - switched_at).total_seconds()
    assert (
        detected
        <= settings.probe_interval_seconds + (settings.probe_hysteresis - 1) * settings.probe_confirm_seconds
    )
    assert "IAM rejected by plant7-local" in view.evidence and "x509 works" in view.evidence
    assert "AWS endpoints answer" in view.evidence
    # The verdict is the site view's: CloudWatch still says connected (it reports a minute or two late).
    outpost = probed_site.outpost
    session.refresh(outpost)
    verdict = site.verdict(outpost, view, settings.vantage)
    assert (verdict.state, verdict.source) == ("DISCONNECTED", site.SITE_VIEW)
    assert verdict.since == view.since and "CloudWatch has not reported yet" in verdict.text
    assert "IAM rejected by plant7-local" in verdict.text

    # Reconnect: equally fast.
    probed_site.sim.connect()
    probe_clock.advance(settings.probe_interval_seconds)
    _cycle(probed_site, session_factory, probe_clock, runner)
    assert _view(session, settings.vantage, probed_site.outpost.id).state == "CONNECTED"
    stretches = session.scalars(select(SiteStretch).order_by(SiteStretch.started_at)).all()
    assert [s.state for s in stretches] == ["CONNECTED", "DISCONNECTED", "CONNECTED"]
    assert stretches[1].ended_at == stretches[2].started_at


def test_a_single_failed_probe_does_not_change_the_state(
    probed_site: Site, session_factory: sessionmaker[Session], session: Session, probe_clock: FakeClock
) -> None:
    # No quick confirmation: the next observation is a whole interval later.
    settings = probed_site.settings(probe_hysteresis=2, probe_confirm_seconds=0)
    runner = probes.Runner.from_settings(settings)
    _cycle(probed_site, session_factory, probe_clock, runner)
    probed_site.sim.disconnect()
    probe_clock.advance(10)
    result = _cycle(probed_site, session_factory, probe_clock, runner)
    view = _view(session, settings.vantage, probed_site.outpost.id)
    assert view.state == "CONNECTED" and view.observed == "DISCONNECTED" and view.observed_count == 1
    assert not result.changed
    probed_site.sim.connect()
    probe_clock.advance(10)
    _cycle(probed_site, session_factory, probe_clock, runner)
    view = _view(session, settings.vantage, probed_site.outpost.id)
    assert view.state == "CONNECTED" and view.observed_count == 0
    assert len(session.scalars(select(SiteStretch)).all()) == 1  # no incident, not even a short one
    # Two in a row do change it.
    probed_site.sim.disconnect()
    for _ in range(2):
        probe_clock.advance(10)
        _cycle(probed_site, session_factory, probe_clock, runner)
    assert _view(session, settings.vantage, probed_site.outpost.id).state == "DISCONNECTED"


def test_two_vantages_sharing_one_database_keep_separate_results(
    probed_site: Site, session_factory: sessionmaker[Session], session: Session, probe_clock: FakeClock
) -> None:
    plant = probes.Runner.from_settings(probed_site.settings(vantage="plant7-datacenter"))
    region = probes.Runner.from_settings(probed_site.settings(vantage="us-west-2"))
    _cycle(probed_site, session_factory, probe_clock, plant)
    probed_site.sim.disconnect()
    probe_clock.advance(10)
    _cycle(probed_site, session_factory, probe_clock, region)

    assert _view(session, "plant7-datacenter", probed_site.outpost.id).state == "CONNECTED"
    assert _view(session, "us-west-2", probed_site.outpost.id).state == "DISCONNECTED"
    rows = session.scalars(select(ProbeResult).where(ProbeResult.kind == probe_kinds.KUBE_IAM)).all()
    assert sorted((r.vantage, r.result) for r in rows) == [
        ("plant7-datacenter", "ok"),
        ("us-west-2", "rejected"),
    ]
    for vantage in ("plant7-datacenter", "us-west-2"):
        kinds = set(session.scalars(select(ProbeResult.kind).where(ProbeResult.vantage == vantage)))
        assert kinds >= {
            *probe_kinds.AWS_KINDS,
            probe_kinds.KUBE_LIVEZ,
            probe_kinds.KUBE_IAM,
            probe_kinds.KUBE_X509,
        }
    assert (
        site.verdicts(session, "plant7-datacenter", [probed_site.outpost])[probed_site.outpost.id].state
        == "CONNECTED"
    )
    assert (
        site.verdicts(session, "us-west-2", [probed_site.outpost])[probed_site.outpost.id].state
        == "DISCONNECTED"
    )


def test_unreachable_aws_endpoints_are_evidence_and_the_banner_source(
    probed_site: Site, session_factory: sessionmaker[Session], session: Session, probe_clock: FakeClock
) -> None:
    from tests.conftest import free_port

    settings = probed_site.settings(aws_endpoint_url=f"http://127.0.0.1:{free_port()}")
    runner = probes.Runner.from_settings(settings)
    _cycle(probed_site, session_factory, probe_clock, runner)
    view = _view(session, settings.vantage, probed_site.outpost.id)
    assert "AWS endpoints unreachable from this dashboard" in view.evidence
    vantage = site.probe_vantage(session, settings.vantage, probe_clock.now, dt.timedelta(seconds=50))
    assert vantage is not None and vantage.reachable is False
    assert "refused" in (vantage.message or "").lower() and "site probes" in vantage.source
    # Another vantage's results are not this one's.
    assert site.probe_vantage(session, "elsewhere", probe_clock.now, dt.timedelta(seconds=50)) is None


def test_site_only_stretch_is_reconciled_when_cloudwatch_backfills(
    probed_site: Site, session: Session
) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    pk = probed_site.outpost.id
    seen = site.Observation("DISCONNECTED", ("IAM rejected by plant7-local",))
    start = now - dt.timedelta(minutes=30)
    site.update_views(
        session,
        "plant7-datacenter",
        {pk: site.Observation("CONNECTED", ())},
        2,
        start - dt.timedelta(minutes=1),
    )
    for offset in (0, 10):
        site.update_views(session, "plant7-datacenter", {pk: seen}, 2, start + dt.timedelta(seconds=offset))
    back = site.Observation("CONNECTED", ())
    for offset in (0, 10):
        site.update_views(
            session, "plant7-datacenter", {pk: back}, 2, start + dt.timedelta(minutes=10, seconds=offset)
        )
    site.reconcile_stretches(session, "plant7-datacenter", now)
    down = session.scalars(select(SiteStretch).where(SiteStretch.state == "DISCONNECTED")).one()
    assert (down.started_at, down.ended_at) == (start, start + dt.timedelta(minutes=10))
    assert down.cloudwatch == "none"  # CloudWatch has nothing: the site view is the only record
    assert site.site_only_stretches(session, pk) == [down]

    # The backfill brings CloudWatch's minutes: the stretch is reconciled and leaves the site-only list.
    for minute in range(10):
        session.add(
            ConnectedSample(
                outpost_pk=pk, ts=start + dt.timedelta(minutes=minute), value=0.0, period_seconds=60
            )
        )
    session.flush()
    site.reconcile_stretches(session, "plant7-datacenter", now)
    session.refresh(down)
    assert down.cloudwatch == "agrees" and down.cloudwatch_seconds == 600
    assert site.site_only_stretches(session, pk) == []


def _with_control_plane_ips(probed_site: Site, session: Session, ips: list[str]) -> None:
    """The endpoint as a hostname (served by the simulator's certificate) and the ENI IPs the
    readiness poller recorded for it."""
    from app.models import Cluster
    from app.services.readiness import records

    cluster = session.get_one(Cluster, probed_site.cluster.id)
    cluster.endpoint = probed_site.sim.url.replace("127.0.0.1", "localhost")
    state = records.ensure_state(session, cluster)
    state.facts = {**(state.facts or {}), "eni_ips": ips}
    session.commit()


def test_each_control_plane_ip_is_probed_with_the_endpoint_name(
    probed_site: Site, session_factory: sessionmaker[Session], session: Session, probe_clock: FakeClock
) -> None:
    """TLS to each known IP verifies the endpoint's hostname; an IP nothing answers on is told apart."""
    _with_control_plane_ips(probed_site, session, ["127.0.0.1", "127.0.0.2", "not-an-ip"])
    runner = probes.Runner.from_settings(probed_site.settings(probe_hysteresis=2, probe_confirm_seconds=0))
    _cycle(probed_site, session_factory, probe_clock, runner)

    rows = {
        r.target: r
        for r in session.scalars(select(ProbeResult).where(ProbeResult.kind == probe_kinds.KUBE_IP_LIVEZ))
    }
    assert set(rows) == {"plant7-local@127.0.0.1", "plant7-local@127.0.0.2"}  # not-an-ip is skipped
    good, dead = rows["plant7-local@127.0.0.1"], rows["plant7-local@127.0.0.2"]
    assert (good.result, good.up) == (probe_kinds.OK, True) and good.latency_ms is not None
    assert (dead.result, dead.up) == (probe_kinds.NO_ROUTE, False)
    assert "127.0.0.2" in dead.detail


def test_control_plane_ip_whose_certificate_does_not_name_the_endpoint_is_tls(
    probed_site: Site, session_factory: sessionmaker[Session], session: Session, probe_clock: FakeClock
) -> None:
    """Reaching the IP is not enough: kubectl with tls-server-name would refuse a wrong certificate."""
    from app.models import Cluster

    _with_control_plane_ips(probed_site, session, ["127.0.0.1"])
    cluster = session.get_one(Cluster, probed_site.cluster.id)
    # A name the simulator's certificate does not carry; it resolves nowhere, but the IP probe
    # connects to the IP and only uses the name for SNI and verification.
    cluster.endpoint = probed_site.sim.url.replace("127.0.0.1", "api.plant7.invalid")
    session.commit()
    runner = probes.Runner.from_settings(probed_site.settings())
    _cycle(probed_site, session_factory, probe_clock, runner)
    row = session.scalars(select(ProbeResult).where(ProbeResult.kind == probe_kinds.KUBE_IP_LIVEZ)).one()
    assert (row.target, row.result, row.up) == ("plant7-local@127.0.0.1", probe_kinds.TLS, False)


def test_unreachable_targets_back_off_but_are_retried(
    probed_site: Site, session_factory: sessionmaker[Session], session: Session, probe_clock: FakeClock
) -> None:
    """A dead IP is probed less often after two failures (its last result stands), never less than
    every BACKOFF_MAX_CYCLES cycles; a reachable one is probed every cycle."""
    _with_control_plane_ips(probed_site, session, ["127.0.0.1", "127.0.0.2"])
    runner = probes.Runner.from_settings(probed_site.settings(probe_confirm_seconds=0))
    tried: dict[str, list[int]] = {"plant7-local@127.0.0.1": [], "plant7-local@127.0.0.2": []}
    for cycle in range(8):
        before = {key: runner.last.get(key) for key in runner.last}
        _cycle(probed_site, session_factory, probe_clock, runner)
        for target in tried:
            key = (probe_kinds.KUBE_IP_LIVEZ, target)
            if before.get(key) is not runner.last[key]:
                tried[target].append(cycle)
        probe_clock.advance(10)
    assert tried["plant7-local@127.0.0.1"] == list(range(8))
    dead = tried["plant7-local@127.0.0.2"]
    assert dead[:2] == [0, 1] and len(dead) < 8  # backed off after two failures
    gaps = [b - a for a, b in itertools.pairwise(dead)]
    assert max(gaps) <= probes.BACKOFF_MAX_CYCLES
    assert runner.failures[(probe_kinds.KUBE_IP_LIVEZ, "plant7-local@127.0.0.2")] >= 2
