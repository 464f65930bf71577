"""AWS errors the poller must classify: AccessDenied (kept on the Outpost), throttling (backs off,
then succeeds or surfaces "throttled"), and errors cleared by the next good poll."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.aws import AwsClients
from app.integrations.cloudwatch import fetch_connected_status
from app.jobs import connectivity
from app.models.poll_run import PollRun
from app.settings import Settings
from tests.conftest import make_settings
from tests.factories import make_outposts, minutes, seed
from tests.support.fake_cloudwatch import ACCESS_DENIED_MESSAGE, fake_cloudwatch


def _settings(database_url: str, endpoint: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "aws_endpoint_url": endpoint,
        "poll_trailing_window_minutes": 5,
        "poll_initial_backfill_hours": 0,
        "aws_read_timeout_seconds": 60,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


def test_access_denied_is_shown_on_each_outpost_and_cleared_by_the_next_good_poll(
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    database_url: str,
    now: dt.datetime,
) -> None:
    outposts = make_outposts(session, 2)
    session.commit()
    t0 = now.replace(second=0) - dt.timedelta(minutes=4)
    seed(aws_endpoint, [p for o in outposts for p in minutes(t0, [1, 1, 1, 1], o.outpost_id)])

    with fake_cloudwatch(aws_endpoint, ["deny"]) as (endpoint, fake):
        (result,) = connectivity.poll_connectivity(
            _settings(database_url, endpoint), session_factory, now=now
        )
    assert fake.answers == ["deny"]  # AccessDenied is not retried
    assert result.outcome == "error"
    assert result.error is not None and result.error.startswith("AccessDenied: User: arn:aws:iam::")
    session.expire_all()
    for outpost in outposts:
        assert outpost.last_error == f"AccessDenied: {ACCESS_DENIED_MESSAGE}"
        assert outpost.last_error_at == now
        assert outpost.state == "UNKNOWN"
    run = session.scalars(select(PollRun)).one()
    assert (run.outcome, run.requests) == ("error", 1)
    assert run.error is not None and "cloudwatch:GetMetricData" in run.error

    later = now + dt.timedelta(minutes=1)
    connectivity.poll_connectivity(_settings(database_url, aws_endpoint), session_factory, now=later)
    session.expire_all()
    for outpost in outposts:
        assert (outpost.last_error, outpost.last_error_at, outpost.state) == (None, None, "CONNECTED")


def test_throttling_backs_off_and_retries_until_it_succeeds(
    session: Session, aws_endpoint: str, database_url: str, now: dt.datetime
) -> None:
    (outpost,) = make_outposts(session, 1)
    t0 = now.replace(second=0) - dt.timedelta(minutes=3)
    seed(aws_endpoint, minutes(t0, [1, 0, 1], outpost.outpost_id))
    with fake_cloudwatch(aws_endpoint, ["throttle", "throttle"]) as (endpoint, fake):
        clients = AwsClients.from_settings(_settings(database_url, endpoint, aws_max_attempts=4))
        started = dt.datetime.now(dt.UTC)
        result = fetch_connected_status(
            clients, "us-west-2", [(t0, t0 + dt.timedelta(minutes=3), 60, [outpost.outpost_id])]
        )
        waited = dt.datetime.now(dt.UTC) - started
    assert fake.answers == ["throttle", "throttle", "proxy"]
    assert (result.requests, result.attempts) == (1, 3)  # one API call, three HTTP attempts
    assert result.region_status == "ok"
    assert [p.value for p in result.series[outpost.outpost_id].datapoints] == [1.0, 0.0, 1.0]
    # standard retry mode waits (random, exponential) between attempts instead of hammering
    assert waited > dt.timedelta(0)


def test_persistent_throttling_surfaces_as_throttled(
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    database_url: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    session.commit()
    with fake_cloudwatch(aws_endpoint, [], default="throttle") as (endpoint, fake):
        (result,) = connectivity.poll_connectivity(
            _settings(database_url, endpoint, aws_max_attempts=2), session_factory, now=now
        )
    # botocore's `max_attempts` counts retries: the first attempt plus two retries
    assert fake.answers == ["throttle", "throttle", "throttle"]
    assert result.outcome == "error"
    assert result.error is not None and result.error.startswith("throttled by CloudWatch after retries")
    session.expire_all()
    assert outpost.last_error is None  # throttling is the region's problem, not this Outpost's


def test_next_token_is_followed_and_pages_are_merged(
    session: Session, aws_endpoint: str, database_url: str, now: dt.datetime
) -> None:
    (outpost,) = make_outposts(session, 1)
    t0 = now.replace(second=0) - dt.timedelta(minutes=3)
    seed(aws_endpoint, minutes(t0, [None, 1, 1], outpost.outpost_id))
    first_page = f"page:{int(t0.timestamp())}"
    with fake_cloudwatch(aws_endpoint, [first_page]) as (endpoint, fake):
        clients = AwsClients.from_settings(_settings(database_url, endpoint))
        window = (t0, t0 + dt.timedelta(minutes=3), 60, [outpost.outpost_id])
        result = fetch_connected_status(clients, "us-west-2", [window])
    assert fake.answers == [first_page, "proxy"]
    assert fake.tokens_seen == [None, "page-2"]
    assert result.requests == 2
    series = result.series[outpost.outpost_id]
    assert series.status == "ok"
    assert [(p.ts, p.value) for p in series.datapoints] == [
        (t0, 0.0),
        (t0 + dt.timedelta(minutes=1), 1.0),
        (t0 + dt.timedelta(minutes=2), 1.0),
    ]
