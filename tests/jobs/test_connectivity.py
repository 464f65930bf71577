"""The poll job end to end against moto's server: states, idempotency, request batching, errors."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import connectivity as job
from app.models.connectivity import ConnectedSample, HourlyRollup, Incident, UptimeWindow
from app.models.fleet import Outpost
from app.models.poll_run import PollRun
from app.services.connectivity import status
from app.settings import Settings
from tests.conftest import free_port, make_settings
from tests.factories import make_outposts, minutes, seed


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_poll_derives_each_state_and_records_the_run(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    up, half, down, stale, silent = make_outposts(session, 5)
    session.commit()
    t0 = now.replace(second=0) - dt.timedelta(minutes=5)
    seed(
        aws_endpoint,
        minutes(t0, [1, 1, 1, 1, 1], up.outpost_id)
        + minutes(t0, [1, 1, 1, 1, 0.5], half.outpost_id)
        + minutes(t0, [1, 1, 0, 0, 0], down.outpost_id)
        # the last datapoint is 4 minutes old: 3 whole periods without data
        + minutes(t0, [1, 1, None, None, None], stale.outpost_id),
    )

    results = job.poll_connectivity(poll_settings, session_factory, now=now)

    assert [(r.region, r.outcome, r.requests, r.outposts) for r in results] == [("us-west-2", "ok", 1, 5)]
    session.expire_all()
    states = {o.outpost_id: (o.state, o.last_value) for o in session.scalars(select(Outpost))}
    assert states == {
        up.outpost_id: ("CONNECTED", 1.0),
        half.outpost_id: ("DEGRADED", 0.5),
        down.outpost_id: ("DISCONNECTED", 0.0),
        stale.outpost_id: ("UNKNOWN", 1.0),
        silent.outpost_id: ("UNKNOWN", None),
    }
    assert down.state_since == t0 + dt.timedelta(minutes=2)  # the first of the three zeros
    assert up.state_since == t0
    assert stale.state_since == t0 + dt.timedelta(minutes=2)  # the end of its last datapoint
    assert silent.last_error is not None and "owner's account" in silent.last_error
    assert up.last_error is None
    run = session.scalars(select(PollRun)).one()
    assert (run.job, run.scope, run.outcome, run.requests, run.items) == (
        "connectivity",
        "us-west-2",
        "ok",
        1,
        5,
    )
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert _count(session, ConnectedSample) == 5 + 5 + 5 + 2


def test_repeated_and_overlapping_polls_change_nothing(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    session.commit()
    t0 = now.replace(second=0) - dt.timedelta(minutes=5)
    seed(aws_endpoint, minutes(t0, [1, 0, 0.5, 1, 1], outpost.outpost_id))
    job.poll_connectivity(poll_settings, session_factory, now=now)
    session.expire_all()
    before = (
        session.execute(select(ConnectedSample.ts, ConnectedSample.value).order_by(ConnectedSample.ts)).all(),
        session.execute(
            select(HourlyRollup.hour, HourlyRollup.known_seconds, HourlyRollup.connected_seconds)
        ).all(),
        session.execute(
            select(Incident.id, Incident.started_at, Incident.ended_at, Incident.worst_value)
        ).all(),
        (outpost.state, outpost.state_since),
    )
    assert len(before[2]) == 1

    # the same minute again, then a minute later (windows overlap by four minutes)
    job.poll_connectivity(poll_settings, session_factory, now=now)
    job.poll_connectivity(poll_settings, session_factory, now=now + dt.timedelta(seconds=20))
    session.expire_all()
    after = (
        session.execute(select(ConnectedSample.ts, ConnectedSample.value).order_by(ConnectedSample.ts)).all(),
        session.execute(
            select(HourlyRollup.hour, HourlyRollup.known_seconds, HourlyRollup.connected_seconds)
        ).all(),
        session.execute(
            select(Incident.id, Incident.started_at, Incident.ended_at, Incident.worst_value)
        ).all(),
        (outpost.state, outpost.state_since),
    )
    assert after == before
    assert sum(v for _, _, v in after[1]) == 60 * (1 + 0 + 0.5 + 1 + 1)


def test_1200_outposts_in_one_region_take_exactly_three_requests(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    outposts = make_outposts(session, 1200)
    session.commit()
    last_minute = now.replace(second=0) - dt.timedelta(minutes=1)
    seed(aws_endpoint, [(o.outpost_id, last_minute, 1.0) for o in outposts])
    sent: list[int] = []

    from app.integrations.aws import AwsClients

    class CountingClients(AwsClients):
        def client(self, service: str, region: str):  # type: ignore[no-untyped-def]
            client = super().client(service, region)
            client.meta.events.register(
                "before-send.monitoring.GetMetricData",
                lambda **kw: sent.append(len(kw["request"].body or b"")),
            )
            return client

    clients = CountingClients.from_settings(poll_settings)
    (result,) = job.poll_connectivity(poll_settings, session_factory, now=now, clients=clients)

    assert len(sent) == 3  # 500 + 500 + 200 queries, never one request per Outpost
    assert (result.requests, result.outposts, result.outcome, result.samples_written) == (3, 1200, "ok", 1200)
    session.expire_all()
    assert session.scalar(select(func.count()).where(Outpost.state == "CONNECTED")) == 1200
    assert session.scalars(select(PollRun.requests)).one() == 3


def test_unreachable_aws_makes_states_unknown_and_vantage_says_since_when(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    database_url: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    session.commit()
    t0 = now.replace(second=0) - dt.timedelta(minutes=5)
    seed(aws_endpoint, minutes(t0, [1, 1, 1, 1, 1], outpost.outpost_id))
    job.poll_connectivity(poll_settings, session_factory, now=now)
    session.expire_all()
    assert outpost.state == "CONNECTED"
    assert status.aws_vantage(session, now).reachable is True

    closed = make_settings(
        database_url,
        aws_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_max_attempts=1,
        aws_connect_timeout_seconds=1,
    )
    first_failure = now + dt.timedelta(minutes=1)
    for minute in (1, 2):
        (result,) = job.poll_connectivity(closed, session_factory, now=now + dt.timedelta(minutes=minute))
        assert result.outcome == "unreachable"
        assert result.error is not None and "AWS unreachable" in result.error

    session.expire_all()
    # Missing data is never connected: the last datapoint was 1, yet the state is UNKNOWN at once.
    assert outpost.state == "UNKNOWN"
    assert outpost.state_since == t0 + dt.timedelta(minutes=5)
    assert outpost.last_error is None  # a region-wide outage is not the Outpost's own problem
    vantage = status.aws_vantage(session, now + dt.timedelta(minutes=3))
    assert vantage.reachable is False
    assert vantage.unreachable_since == first_failure
    assert vantage.message is not None and "unreachable" in vantage.message
    runs = session.scalars(select(PollRun.outcome).order_by(PollRun.started_at)).all()
    assert runs == ["ok", "unreachable", "unreachable"]

    job.poll_connectivity(poll_settings, session_factory, now=now + dt.timedelta(minutes=3))
    session.expire_all()
    assert status.aws_vantage(session, now + dt.timedelta(minutes=3)).reachable is True


def test_run_once_raises_after_recording_a_failed_region(
    session_factory: sessionmaker[Session], session: Session, database_url: str
) -> None:
    make_outposts(session, 1, region="eu-west-1")
    session.commit()
    closed = make_settings(
        database_url,
        aws_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_max_attempts=1,
        aws_connect_timeout_seconds=1,
    )
    import pytest

    with pytest.raises(job.PollFailed, match="eu-west-1: unreachable"):
        job.run_once(closed, session_factory)
    session.expire_all()
    assert session.scalars(select(PollRun.outcome)).one() == "unreachable"


def test_one_failing_region_does_not_stop_the_others(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    (good,) = make_outposts(session, 1, region="us-west-2")
    # botocore refuses this region name when building the client: an exception inside the job
    make_outposts(session, 1, region="bad region!", start=2)
    session.commit()
    seed(aws_endpoint, minutes(now.replace(second=0) - dt.timedelta(minutes=2), [1, 1], good.outpost_id))

    results = {r.region: r for r in job.poll_connectivity(poll_settings, session_factory, now=now)}

    assert results["us-west-2"].outcome == "ok"
    assert results["bad region!"].outcome == "error"
    assert results["bad region!"].error is not None and "InvalidRegionError" in results["bad region!"].error
    session.expire_all()
    assert good.state == "CONNECTED"
    runs = {scope: outcome for scope, outcome in session.execute(select(PollRun.scope, PollRun.outcome))}
    assert runs == {"us-west-2": "ok", "bad region!": "error"}


def test_register_adds_one_interval_job(
    poll_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    job.register(scheduler, poll_settings, session_factory)
    (registered,) = scheduler.get_jobs()
    assert registered.id == "connectivity"
    assert registered.trigger.interval == dt.timedelta(seconds=poll_settings.poll_interval_seconds)
    assert (registered.max_instances, registered.coalesce) == (1, True)


def test_an_unreachable_endpoint_is_not_retried_for_every_backfill_chunk(
    session_factory: sessionmaker[Session], session: Session, database_url: str, now: dt.datetime
) -> None:
    make_outposts(session, 3)
    session.commit()
    closed = make_settings(
        database_url,
        aws_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_max_attempts=1,
        aws_connect_timeout_seconds=1,
        poll_initial_backfill_hours=24,  # nine windows planned for never-polled Outposts
    )
    (result,) = job.poll_connectivity(closed, session_factory, now=now)
    assert (result.outcome, result.requests) == ("unreachable", 1)
    session.expire_all()
    assert set(session.scalars(select(Outpost.state))) == {"UNKNOWN"}


def test_every_cycle_stores_each_outposts_uptime_with_its_samples(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    database_url: str,
    now: dt.datetime,
) -> None:
    up, half = make_outposts(session, 2)
    session.commit()
    t0 = now.replace(second=0) - dt.timedelta(minutes=5)
    seed(
        aws_endpoint,
        minutes(t0, [1] * 5, up.outpost_id) + minutes(t0, [1, 1, 0.5, 0.5, 0.5], half.outpost_id),
    )

    def stored(at: dt.datetime) -> dict[tuple[int, str], tuple[float, float, dt.datetime, dt.datetime]]:
        session.expire_all()
        rows = session.scalars(select(UptimeWindow)).all()
        assert {r.as_of for r in rows} == {at}
        return {
            (r.outpost_pk, r.window_key): (r.connected_seconds, r.known_seconds, r.as_of, r.valid_until)
            for r in rows
        }

    job.poll_connectivity(poll_settings, session_factory, now=now)
    first = stored(now)
    computed = status.uptime_bulk(session, [up.id, half.id], tuple(status.WINDOWS), now)
    valid_until = now + job.uptime_valid_for(poll_settings)
    assert first == {
        (pk, name): (u.connected_seconds, u.known_seconds, now, valid_until)
        for pk, by_window in computed.items()
        for name, u in by_window.items()
    }
    assert first[(half.id, "24h")][0] == 2 * 60 + 3 * 30 and first[(up.id, "24h")][0] == 5 * 60

    # AWS unreachable: no sample lands, yet the cycle moves every window on (its unknown time grows).
    closed = make_settings(
        database_url,
        aws_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_max_attempts=1,
        aws_connect_timeout_seconds=1,
    )
    later = now + dt.timedelta(minutes=1)
    (result,) = job.poll_connectivity(closed, session_factory, now=later)
    assert result.outcome == "unreachable"
    assert set(stored(later)) == set(first)
