"""Exactly one poller (issue 11): schedulers on one PostgreSQL database elect one leader and hand over
within a poll interval when it is SIGKILLed; on SQLite a second scheduler on the file refuses to start.

Real processes (`lifeline scheduler`), real PostgreSQL; about 40 s on PostgreSQL, 5 s on SQLite.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import create_db_engine
from app.jobs.leader import current_leader
from app.models import ConnectedSample, HourlyRollup, PollRun
from app.services.connectivity import status
from tests.conftest import DatabaseServer
from tests.factories import minutes, seed

POLL = 10  # the shortest interval the settings allow
OP = "op-0123456789abcdef0"


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "scheduler"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def _env(database_url: str, moto_server: str, fleet: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    env.update(
        LIFELINE_DATABASE_URL=database_url,
        LIFELINE_POLL_INTERVAL_SECONDS=str(POLL),
        LIFELINE_AWS_ENDPOINT_URL=moto_server,
        LIFELINE_FLEET_FILE=str(fleet),
        LIFELINE_AWS_MAX_ATTEMPTS="1",
    )
    return env


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(f"outposts:\n  - id: {OP}\n    name: Plant 7\n    region: us-west-2\n")
    return path


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def conn_count_duplicates(engine) -> int:  # type: ignore[no-untyped-def]
    """Samples stored twice for one (Outpost, minute): 0 unless the primary key failed."""
    with engine.connect() as conn:
        grouped = (
            select(ConnectedSample.outpost_pk, ConnectedSample.ts)
            .group_by(ConnectedSample.outpost_pk, ConnectedSample.ts)
            .having(func.count() > 1)
            .subquery()
        )
        return int(conn.scalar(select(func.count()).select_from(grouped)) or 0)


def _wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.parametrize("count", [2, 3])
def test_one_leader_and_hand_over_within_an_interval_after_sigkill(
    count: int,
    database_server: DatabaseServer,
    aws_endpoint: str,
    fleet_file: Path,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    if database_server.dialect != "postgresql":
        pytest.skip("leader election is PostgreSQL's; the SQLite refusal is tested below")
    url = database_server.create_migrated("leader")
    engine = create_db_engine(url)
    # Two hours of minutes with outages in CloudWatch, so every poll writes samples and rollups.
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=2)
    seed(aws_endpoint, minutes(start, [0.0 if i % 17 < 3 else 1.0 for i in range(121)], OP))
    try:
        env = _env(url, aws_endpoint, fleet_file)
        for n in range(count):
            processes.append(_spawn(env, tmp_path / f"scheduler-{n}.log"))
        by_pid = {proc.pid: proc for proc in processes}
        first = _wait_for(lambda: current_leader(engine).holder, 30, "a leader")
        leader_pid = int(first.rsplit(":", 1)[1])
        assert leader_pid in by_pid

        # One fleet-file run per interval (the discovery job), whatever the number of schedulers.
        def runs() -> int:
            with engine.connect() as conn:
                return int(
                    conn.scalar(select(func.count()).select_from(PollRun).where(PollRun.job == "fleet-file"))
                    or 0
                )

        time.sleep(2 * POLL + 1)
        assert runs() <= 4, f"{runs()} fleet-file runs in ~2 intervals: more than one scheduler is polling"

        by_pid[leader_pid].send_signal(signal.SIGKILL)
        by_pid[leader_pid].wait(timeout=10)
        killed_at = time.monotonic()
        second = _wait_for(
            lambda: (h := current_leader(engine).holder) and h != first and h, POLL, "a new leader"
        )
        handed_over = time.monotonic() - killed_at
        assert int(second.rsplit(":", 1)[1]) in by_pid
        assert handed_over < POLL, f"hand-over took {handed_over:.1f} s"
        before = runs()
        time.sleep(2 * POLL)
        assert runs() - before <= 3
        logs = [(tmp_path / f"scheduler-{n}.log").read_text() for n in range(count)]
        assert sum(log.count("scheduler leader:") for log in logs) == 2, logs

        # Polls per interval stay one: between two connectivity polls of one leader there is close
        # to a whole interval (never two pollers interleaved), and the new leader's first poll comes
        # within an interval of the old leader's last one (nothing skipped). Read from the database.
        with engine.connect() as conn:
            polls = list(
                conn.scalars(
                    select(PollRun.started_at)
                    .where(PollRun.job == status.POLL_JOB)
                    .order_by(PollRun.started_at)
                )
            )
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(polls)]
        assert len(polls) >= 4, polls
        hand_over = max(range(len(gaps)), key=lambda i: abs(gaps[i] - POLL))
        others = gaps[:hand_over] + gaps[hand_over + 1 :]
        assert all(gap >= POLL / 2 for gap in others), f"two polls within half an interval: {gaps}"
        assert gaps[hand_over] <= 2 * POLL, f"an interval was skipped at the hand-over: {gaps}"

        # Rollups equal the samples: every stored hour is the sum of its raw samples, once.
        with engine.connect() as conn:
            samples = conn.execute(
                select(ConnectedSample.ts, ConnectedSample.value, ConnectedSample.period_seconds)
            ).all()
            rollups = {
                row.hour.replace(tzinfo=None): (row.samples, row.connected_seconds, row.known_seconds)
                for row in conn.execute(select(HourlyRollup))
            }
        expected: dict[dt.datetime, tuple[int, float, float]] = {}
        for ts, value, period in samples:
            hour = ts.replace(minute=0, second=0, microsecond=0, tzinfo=None)
            n, connected, known = expected.get(hour, (0, 0.0, 0.0))
            expected[hour] = (n + 1, connected + period * value, known + period)
        assert len(samples) >= 100, "the pollers stored CloudWatch's minutes"
        assert rollups == expected
        duplicates = conn_count_duplicates(engine)
        assert duplicates == 0
    finally:
        engine.dispose()


def test_second_scheduler_on_one_sqlite_file_refuses_to_start(
    tmp_path: Path, moto_server: str, fleet_file: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    from app import migrate

    url = f"sqlite:///{tmp_path / 'one.db'}"
    migrate.upgrade(url)
    env = _env(url, moto_server, fleet_file)
    processes.append(_spawn(env, tmp_path / "first.log"))
    _wait_for(lambda: "scheduler started" in (tmp_path / "first.log").read_text(), 30, "the first scheduler")
    second = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "scheduler"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert "already runs on the SQLite database" in second.stderr
    assert "one scheduler per database file" in second.stderr
    assert processes[0].poll() is None, "the first scheduler keeps running"
