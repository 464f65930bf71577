"""The retention job: raw samples go after their hours are rolled up; rollups, closed incidents and
poll runs go after theirs; uptime over long windows is unchanged by it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.cloudwatch import Datapoint
from app.jobs import retention as job
from app.models.connectivity import ConnectedSample, HourlyRollup, Incident
from app.models.poll_run import PollRun
from app.services.connectivity import status
from app.settings import Settings
from tests.factories import make_outposts, points

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_raw_samples_past_retention_go_and_uptime_stays(
    settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    (outpost,) = make_outposts(session, 1)
    old = NOW - dt.timedelta(days=20)
    status.record_samples(session, {outpost.id: points(old, [1.0] * 30 + [0.0] * 30)})
    status.record_samples(session, {outpost.id: points(NOW - dt.timedelta(hours=2), [1.0] * 60)})
    session.commit()
    before = status.uptime_for(session, outpost.id, "30d", NOW)

    result = job.run_retention(settings, session_factory, now=NOW)

    assert (result.samples_deleted, result.rollups_rebuilt) == (60, 0)
    session.expire_all()
    assert _count(session, ConnectedSample) == 60
    assert status.uptime_for(session, outpost.id, "30d", NOW) == before
    assert before.connected_seconds == 90 * 60
    run = session.scalars(select(PollRun).where(PollRun.job == "retention")).one()
    assert (run.outcome, run.items) == ("ok", 60)


def test_raw_samples_without_a_rollup_are_rolled_up_before_they_go(
    settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    (outpost,) = make_outposts(session, 1)
    hour = NOW - dt.timedelta(days=16)
    # written behind record_samples' back (an import, an older version): no rollup yet
    session.add_all(
        ConnectedSample(
            outpost_pk=outpost.id, ts=hour + dt.timedelta(minutes=i), value=0.5, period_seconds=60
        )
        for i in range(10)
    )
    session.commit()

    result = job.run_retention(settings, session_factory, now=NOW)

    assert (result.samples_deleted, result.rollups_rebuilt) == (10, 1)
    session.expire_all()
    rollup = session.get_one(HourlyRollup, (outpost.id, hour))
    assert (rollup.known_seconds, rollup.connected_seconds, rollup.samples) == (600.0, 300.0, 10)


def test_rollups_closed_incidents_and_poll_runs_past_retention_go(
    settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    outpost, other = make_outposts(session, 2)
    ancient = NOW - dt.timedelta(days=800)
    status.record_samples(session, {outpost.id: points(ancient, [1.0, 0.0, 1.0])})  # a closed incident
    status.record_samples(session, {outpost.id: points(ancient + dt.timedelta(hours=5), [1.0, 0.0])})  # open
    status.record_samples(session, {other.id: points(NOW - dt.timedelta(days=100), [0.0, 1.0])})
    session.add_all(
        [
            PollRun(
                job="connectivity", scope="us-west-2", started_at=NOW - dt.timedelta(days=31), outcome="ok"
            ),
            PollRun(
                job="connectivity", scope="us-west-2", started_at=NOW - dt.timedelta(days=1), outcome="ok"
            ),
        ]
    )
    session.commit()

    result = job.run_retention(settings, session_factory, now=NOW)

    assert (result.rollups_deleted, result.incidents_deleted, result.poll_runs_deleted) == (2, 1, 1)
    session.expire_all()
    remaining = session.execute(
        select(Incident.started_at, Incident.ended_at).order_by(Incident.started_at)
    ).all()
    # an ongoing incident is kept whatever its age
    assert [(s, e is None) for s, e in remaining] == [
        (ancient + dt.timedelta(hours=5, minutes=1), True),
        (NOW - dt.timedelta(days=100), False),
    ]
    assert session.scalars(select(HourlyRollup.hour)).all() == [NOW - dt.timedelta(days=100)]
    assert sorted(session.scalars(select(PollRun.job))) == ["connectivity", "retention"]


def test_re_reading_history_past_raw_retention_does_not_count_it_twice(
    settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    (outpost,) = make_outposts(session, 1)
    old = NOW - dt.timedelta(days=20)
    status.record_samples(session, {outpost.id: points(old, [1.0] * 10)})
    session.commit()
    job.run_retention(settings, session_factory, now=NOW)
    session.expire_all()

    frozen = NOW - dt.timedelta(days=settings.raw_retention_days)
    again = [*points(old, [1.0] * 10), Datapoint(old + dt.timedelta(hours=3), 1.0, 300)]
    result = status.record_samples(session, {outpost.id: again}, frozen_before=frozen)
    assert result.inserted == 1  # only the hour nobody had seen
    rollup = session.get_one(HourlyRollup, (outpost.id, old))
    assert (rollup.known_seconds, rollup.samples) == (600.0, 10)


def test_site_history_follows_the_rollup_horizon(
    settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    """Ended site stretches go with the rollups; the lasting one and fresh probe results stay."""
    from app.models.probe import ProbeResult, SiteStretch

    (outpost,) = make_outposts(session, 1)
    long_ago = NOW - dt.timedelta(days=settings.rollup_retention_days + 5)
    recent = NOW - dt.timedelta(days=1)
    stretches = [
        ("disconnected", long_ago, long_ago + dt.timedelta(hours=1)),  # ended past the horizon: goes
        ("connected", long_ago + dt.timedelta(hours=1), recent),  # ended recently: stays
        ("disconnected", recent, None),  # still lasting, however old its start: stays
    ]
    for state, started, ended in stretches:
        session.add(
            SiteStretch(
                vantage="here", outpost_pk=outpost.id, state=state, started_at=started, ended_at=ended
            )
        )
    for target, checked in (("retired-vantage", long_ago), ("live", NOW - dt.timedelta(seconds=10))):
        session.add(
            ProbeResult(
                vantage=target,
                kind="aws",
                target="monitoring.us-west-2.amazonaws.com",
                result="answer",
                up=True,
                checked_at=checked,
                since=checked,
            )
        )
    session.commit()

    result = job.run_retention(settings, session_factory, now=NOW)

    assert (result.site_stretches_deleted, result.probe_results_deleted) == (1, 1)
    session.expire_all()
    kept = session.scalars(select(SiteStretch.state).order_by(SiteStretch.started_at)).all()
    assert kept == ["connected", "disconnected"]
    assert session.scalars(select(ProbeResult.vantage)).all() == ["live"]
