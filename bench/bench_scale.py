"""Benchmark of issue 20: the fleet at 200, 1,000 and 5,000 Outposts on SQLite and PostgreSQL.

For each database and size: migrate, bulk-load a year of hourly rollups, recent 60-second samples
and incidents with set-based SQL (a recursive CTE on SQLite, generate_series on PostgreSQL), serve
it with uvicorn in a subprocess, then measure the overview, an Outpost page (every range) and
`GET /api/v1/outposts` at 1 client and at 16 (on one sign-in, then each on its own), each beside a
static file of the same size served by the same server in the same run (the baseline). Page and
baseline are measured in alternating rounds (`side_by_side`), so both see the machine at the same
speed; a machine shared with other work changes speed by itself within seconds. Beside each p50
the server process's CPU time per request is printed, page and baseline (PostgreSQL's own work
runs in its processes and is not in it). Failed requests (non-200 answers, timeouts) are counted,
not raised. A second server with the fragment
cache off gives the cold render of the overview, and the server's peak RSS after each size shows
how memory grows. Between seeding and measuring, the seeding's writes are flushed and the machine
is given a few quiet seconds (`settle`), so the flush does not run during the first cases.

Targets (issue 20): p50 <= 2x the static file's at 1 and 16 clients, zero errors; a cold render
under 200 ms at 1,000 Outposts.

Run: `python -m bench bench_scale`. Knobs (environment):
  LIFELINE_BENCH_SIZES        Outposts per case, default "200,1000,5000"
  LIFELINE_BENCH_DATABASES    "sqlite,postgresql" (default both)
  LIFELINE_BENCH_PG_URL       server to create the scratch database on
                              (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
  LIFELINE_BENCH_PG_PREFIX    scratch databases are <prefix>_<size>, default lifeline_bench_scale
  LIFELINE_BENCH_ROLLUP_DAYS  days of hourly rollups, default 365
  LIFELINE_BENCH_RAW_HOURS    hours of 60-second samples, default 48
  LIFELINE_BENCH_SECONDS      time cap per measured case, default 8
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.bench_overview import HALF_HOUR_SQL, create_viewer, free_port, pct, sign_in

ROOT = Path(__file__).resolve().parents[1]
STATIC_DIR = ROOT / "static"
TARGET_RATIO = 2.0
COLD_TARGET_MS = 200.0
REGIONS = ["us-west-2", "us-east-1", "eu-west-1", "ap-southeast-2", "eu-central-1"]
# Per 100 Outposts: 85 connected, 5 degraded, 6 disconnected, 4 unknown.
STATE_SQL = (
    "CASE WHEN {i} % 100 < 85 THEN 'CONNECTED' WHEN {i} % 100 < 90 THEN 'DEGRADED'"
    " WHEN {i} % 100 < 96 THEN 'DISCONNECTED' ELSE 'UNKNOWN' END"
)
VALUE_SQL = "CASE WHEN {i} % 100 < 85 THEN 1.0 WHEN {i} % 100 < 90 THEN 0.5 WHEN {i} % 100 < 96 THEN 0.0 END"
# 1 client: enough requests for a steady p50 within the time cap (60 gave ±50% between runs).
REQUESTS = {1: 300, 16: 480}
# Page and baseline alternate this many times per case: measured one after the other, the ninth
# session saw the same static file's p50 move from 18 to 33 ms between consecutive cases.
ROUNDS = 6


def _env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


@dataclass
class Config:
    sizes: list[int] = field(
        default_factory=lambda: [int(s) for s in _env_list("LIFELINE_BENCH_SIZES", "200,1000,5000")]
    )
    databases: list[str] = field(
        default_factory=lambda: _env_list("LIFELINE_BENCH_DATABASES", "sqlite,postgresql")
    )
    pg_url: str = os.environ.get(
        "LIFELINE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    # Scratch databases are named <prefix>_<size> (two benchmarks on one server need two prefixes).
    pg_prefix: str = os.environ.get("LIFELINE_BENCH_PG_PREFIX", "lifeline_bench_scale")
    rollup_days: int = int(os.environ.get("LIFELINE_BENCH_ROLLUP_DAYS", "365"))
    raw_hours: int = int(os.environ.get("LIFELINE_BENCH_RAW_HOURS", "48"))
    seconds: float = float(os.environ.get("LIFELINE_BENCH_SECONDS", "8"))


# ---------------------------------------------------------------- seeding


def _sqlite_ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def seed_sqlite(path: Path, size: int, now: dt.datetime, cfg: Config) -> None:
    hour = now.replace(minute=0, second=0, microsecond=0)
    raw_start = now.replace(second=0, microsecond=0) - dt.timedelta(hours=cfg.raw_hours)
    rollup_start = hour - dt.timedelta(days=cfg.rollup_days)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        ts = "strftime('%Y-%m-%d %H:%M:%S', datetime(?, ({n}) || ' {unit}')) || '.000000'"
        conn.execute(
            f"""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO outposts (outpost_id, name, region, source, state, state_since, last_sample_at,
                                  last_value, last_error, last_error_at, created_at, updated_at)
            SELECT printf('op-%017x', i), printf('Site %04d, rack %s', i / 4, substr('ABCD', i % 4 + 1, 1)),
                   CASE i % 5 {" ".join(f"WHEN {k} THEN '{r}'" for k, r in enumerate(REGIONS))} END,
                   'file', {STATE_SQL.format(i="i")},
                   {ts.format(n="-(i % 48)", unit="hours")},
                   {ts.format(n="-(CASE WHEN i % 100 < 96 THEN 1 ELSE 30 END)", unit="minutes")},
                   {VALUE_SQL.format(i="i")},
                   CASE WHEN i % 67 = 5
                   THEN 'AccessDenied: not authorized to perform cloudwatch:GetMetricData' END,
                   CASE WHEN i % 67 = 5 THEN ? END, ?, ?
            FROM n
            """,  # noqa: S608 (constants only)
            (
                size,
                _sqlite_ts(now),
                _sqlite_ts(now),
                _sqlite_ts(now) + ".000000",
                *[_sqlite_ts(now) + ".000000"] * 2,
            ),
        )
        conn.execute(
            f"""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO connected_samples (outpost_pk, ts, value, period_seconds)
            SELECT o.id, {ts.format(n="n.i", unit="minutes")},
                   CASE WHEN (n.i + o.id * 37) % 1440 < 5 THEN 0.0
                        WHEN (n.i + o.id * 53) % 4320 < 30 THEN 0.5 ELSE 1.0 END, 60
            FROM outposts o CROSS JOIN n WHERE (n.i + o.id) % 400 != 0
            """,  # noqa: S608
            (cfg.raw_hours * 60 - 1, _sqlite_ts(raw_start)),
        )
        conn.execute(
            f"""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO hourly_rollups
                (outpost_pk, hour, connected_seconds, known_seconds, min_value, avg_value, samples)
            SELECT o.id, {ts.format(n="n.i", unit="hours")},
                   CASE WHEN (n.i + o.id) % 50 = 0 THEN 3000.0 ELSE 3600.0 END, 3600.0,
                   CASE WHEN (n.i + o.id) % 50 = 0 THEN 0.0 ELSE 1.0 END,
                   CASE WHEN (n.i + o.id) % 50 = 0 THEN 0.8333 ELSE 1.0 END, 60
            FROM outposts o CROSS JOIN n WHERE (n.i + o.id) % 97 != 0
            """,  # noqa: S608
            (cfg.rollup_days * 24, _sqlite_ts(rollup_start)),
        )
        # Daily rollups are kept from the hourly ones at write time (migration 0024 does the same).
        conn.execute(
            """
            INSERT INTO daily_rollups (outpost_pk, day, connected_seconds, known_seconds, min_value, samples)
            SELECT outpost_pk, strftime('%Y-%m-%d 00:00:00.000000', hour), SUM(connected_seconds),
                   SUM(known_seconds), MIN(min_value), SUM(samples)
            FROM hourly_rollups GROUP BY outpost_pk, strftime('%Y-%m-%d 00:00:00.000000', hour)
            """
        )
        conn.execute(HALF_HOUR_SQL["sqlite"])
        conn.execute(
            f"""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
            INSERT INTO incidents (outpost_pk, started_at, ended_at, worst_value, last_below_at)
            SELECT o.id, {ts.format(n="-(n.i * 4320 + o.id % 60)", unit="minutes")},
                   {ts.format(n="-(n.i * 4320 + o.id % 60 - 5 - o.id % 20)", unit="minutes")}, 0.0,
                   {ts.format(n="-(n.i * 4320 + o.id % 60 - 5 - o.id % 20)", unit="minutes")}
            FROM outposts o CROSS JOIN n
            """,  # noqa: S608
            (_sqlite_ts(hour),) * 3,
        )
        conn.execute(
            "INSERT INTO poll_runs (job, scope, started_at, finished_at, outcome, requests, items)"
            " VALUES ('connectivity', 'us-west-2', ?, ?, 'ok', 1, ?)",
            (
                _sqlite_ts(now - dt.timedelta(seconds=32)) + ".000000",
                _sqlite_ts(now - dt.timedelta(seconds=30)) + ".000000",
                size,
            ),
        )
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _pg_dsn(url: str, database: str | None = None) -> str:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    if database is None:
        return plain
    return plain.rsplit("/", 1)[0] + "/" + database


def _pg(sql: str) -> str:
    """psycopg's placeholders are %(name)s: the modulo operator is written %% in a query with them."""
    return sql.replace(" % ", " %% ")


def seed_postgresql(admin_url: str, database: str, size: int, now: dt.datetime, cfg: Config) -> str:
    import psycopg

    with psycopg.connect(_pg_dsn(admin_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + database
    from app import migrate

    migrate.upgrade(url)
    hour = now.replace(minute=0, second=0, microsecond=0)
    raw_start = now.replace(second=0, microsecond=0) - dt.timedelta(hours=cfg.raw_hours)
    rollup_start = hour - dt.timedelta(days=cfg.rollup_days)
    regions = " ".join(f"WHEN {k} THEN '{r}'" for k, r in enumerate(REGIONS))
    with psycopg.connect(_pg_dsn(url)) as conn:
        conn.execute("SET synchronous_commit = off")
        restore = _drop_keys(conn, BULK_TABLES)
        conn.execute(
            _pg(f"""
            INSERT INTO outposts (outpost_id, name, region, source, state, state_since, last_sample_at,
                                  last_value, last_error, last_error_at, created_at, updated_at)
            SELECT 'op-' || lpad(to_hex(i), 17, '0'),
                   'Site ' || lpad((i / 4)::text, 4, '0') || ', rack ' || substr('ABCD', i % 4 + 1, 1),
                   CASE i % 5 {regions} END, 'file', {STATE_SQL.format(i="i")},
                   %(now)s - (i % 48) * interval '1 hour',
                   %(now)s - (CASE WHEN i % 100 < 96 THEN 1 ELSE 30 END) * interval '1 minute',
                   {VALUE_SQL.format(i="i")},
                   CASE WHEN i % 67 = 5 THEN
                     'AccessDenied: not authorized to perform cloudwatch:GetMetricData' END,
                   CASE WHEN i % 67 = 5 THEN %(now)s END, %(now)s, %(now)s
            FROM generate_series(1, %(size)s) AS i
            """),  # noqa: S608 (constants only)
            {"now": now, "size": size},
        )
        conn.commit()
        # The two big tables, each in SEED_WORKERS parts (by Outpost) on connections of their own.
        _in_parallel(
            url,
            _pg("""
            INSERT INTO connected_samples (outpost_pk, ts, value, period_seconds)
            SELECT o.id, %(start)s + n * interval '1 minute',
                   CASE WHEN (n + o.id * 37) % 1440 < 5 THEN 0.0
                        WHEN (n + o.id * 53) % 4320 < 30 THEN 0.5 ELSE 1.0 END, 60
            FROM outposts o CROSS JOIN generate_series(0, %(count)s) AS n
            WHERE (n + o.id) % 400 != 0 AND o.id % %(parts)s = %(part)s
            """),
            {"start": raw_start, "count": cfg.raw_hours * 60 - 1},
        )
        _in_parallel(
            url,
            _pg("""
            INSERT INTO hourly_rollups
                (outpost_pk, hour, connected_seconds, known_seconds, min_value, avg_value, samples)
            SELECT o.id, %(start)s + n * interval '1 hour',
                   CASE WHEN (n + o.id) % 50 = 0 THEN 3000.0 ELSE 3600.0 END, 3600.0,
                   CASE WHEN (n + o.id) % 50 = 0 THEN 0.0 ELSE 1.0 END,
                   CASE WHEN (n + o.id) % 50 = 0 THEN 0.8333 ELSE 1.0 END, 60
            FROM outposts o CROSS JOIN generate_series(0, %(count)s) AS n
            WHERE (n + o.id) % 97 != 0 AND o.id % %(parts)s = %(part)s
            """),
            {"start": rollup_start, "count": cfg.rollup_days * 24},
        )
        conn.execute(
            _pg("""
            INSERT INTO daily_rollups (outpost_pk, day, connected_seconds, known_seconds, min_value, samples)
            SELECT outpost_pk, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                   SUM(connected_seconds), SUM(known_seconds), MIN(min_value), SUM(samples)
            FROM hourly_rollups
            GROUP BY outpost_pk, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
            """)
        )
        conn.execute(HALF_HOUR_SQL["postgresql"])
        conn.execute(
            _pg("""
            INSERT INTO incidents (outpost_pk, started_at, ended_at, worst_value, last_below_at)
            SELECT o.id, s, s + (5 + o.id % 20) * interval '1 minute', 0.0,
                   s + (5 + o.id % 20) * interval '1 minute'
            FROM outposts o CROSS JOIN generate_series(1, 20) AS n,
                 LATERAL (SELECT %(hour)s - (n * 4320 + o.id % 60) * interval '1 minute' AS s) AS t
            """),
            {"hour": hour},
        )
        conn.execute(
            "INSERT INTO poll_runs (job, scope, started_at, finished_at, outcome, requests, items)"
            " VALUES ('connectivity', 'us-west-2', %s, %s, 'ok', 1, %s)",
            (now - dt.timedelta(seconds=32), now - dt.timedelta(seconds=30), size),
        )
        conn.execute("SET maintenance_work_mem = '256MB'")
        for statement in restore:
            conn.execute(statement)
        conn.commit()
    with psycopg.connect(_pg_dsn(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


# PostgreSQL: loaded without their keys, which are put back after (one sorted build of each index
# instead of an insert per row, and one foreign-key check per table instead of one per row), the two
# big tables on SEED_WORKERS connections. 1,000 Outposts seed in 23 s, where they took 81 s (and the
# 5,000 14 minutes). The same rows and constraints; an index built at once is about 8% smaller than
# one grown row by row.
BULK_TABLES = ("connected_samples", "hourly_rollups", "halfhour_rollups", "daily_rollups")
SEED_WORKERS = 2


def _drop_keys(conn: Any, tables: tuple[str, ...]) -> list[str]:
    """Drop the primary and foreign keys of `tables`; returns the statements that add them back
    (primary keys first), as the migrations made them (`pg_get_constraintdef`)."""
    keys = conn.execute(
        "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('p', 'f') ORDER BY contype DESC",
        (list(tables),),
    ).fetchall()
    for table, name, _kind, _definition in reversed(keys):
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, _k, definition in keys
    ]


def _in_parallel(url: str, sql: str, params: dict[str, Any]) -> None:
    """`sql` once per part (its `%(parts)s` and `%(part)s`), each part on a connection of its own."""
    import psycopg

    def part(index: int) -> None:
        with psycopg.connect(_pg_dsn(url)) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(sql, {**params, "parts": SEED_WORKERS, "part": index})

    with concurrent.futures.ThreadPoolExecutor(SEED_WORKERS) as pool:
        for future in [pool.submit(part, index) for index in range(SEED_WORKERS)]:
            future.result()


def seed(db: str, size: int, tmp: Path, now: dt.datetime, cfg: Config) -> str:
    if db == "sqlite":
        path = tmp / f"scale-{size}.db"
        url = f"sqlite:///{path}"
        from app import migrate

        migrate.upgrade(url)
        seed_sqlite(path, size, now, cfg)
    else:
        url = seed_postgresql(cfg.pg_url, f"{cfg.pg_prefix}_{size}", size, now, cfg)
    store_uptime(url, now)
    return url


def store_uptime(url: str, now: dt.datetime) -> None:
    """What each poll does after storing its samples: every Outpost's uptime windows as of `now`.
    No poller runs here, so they are kept valid for the whole run; the time it takes is printed
    (bench_write measures it inside a cycle)."""
    from sqlalchemy import select

    from app.db import create_db_engine, make_session_factory, session_scope
    from app.models import Outpost
    from app.services.connectivity import status

    engine = create_db_engine(url)
    try:
        began = time.perf_counter()
        with session_scope(make_session_factory(engine)) as session:
            pks = list(session.scalars(select(Outpost.id)))
            status.store_uptime(session, pks, now, valid_for=dt.timedelta(days=1))
        print(
            f"  uptime windows of {len(pks):,} Outposts stored in {time.perf_counter() - began:.2f} s",
            flush=True,
        )
    finally:
        engine.dispose()


def _busy(seconds: float) -> float | None:
    """The machine's CPU busy fraction over `seconds` (all cores; iowait counts as idle), or None
    where /proc/stat is not there."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def settle(db: str, url: str, limit: float = 240.0) -> str:
    """Let the seeding's aftermath end before anything is measured: its writes are flushed
    (PostgreSQL's CHECKPOINT, then the kernel's dirty pages), then wait for two quiet seconds in a
    row (under 15% busy), for at most `limit` seconds. Seeding writes gigabytes unsynchronised; the
    flush that follows ran during the first measurements and doubled the static file's p50 there
    (the ninth session's run). Says what it waited and how busy the machine still was."""
    began = time.monotonic()
    if db == "postgresql":
        import psycopg

        with psycopg.connect(_pg_dsn(url), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    os.sync()
    quiet, busy = 0, None
    while quiet < 2 and time.monotonic() - began < limit:
        busy = _busy(1.0)
        if busy is None:
            break
        quiet = quiet + 1 if busy < 0.15 else 0
    shown = "" if busy is None else f", machine {busy:.0%} busy"
    return f"settled in {time.monotonic() - began:.0f} s{shown}"


def drop(db: str, url: str, cfg: Config) -> None:
    if db == "sqlite":
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(_pg_dsn(cfg.pg_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# ---------------------------------------------------------------- serving and measuring


@contextmanager
def server(url: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """uvicorn in a subprocess (no scheduler), with its process for reading memory."""
    port = free_port()
    environment = {**os.environ, "LIFELINE_DATABASE_URL": url, **env}
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=15)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Result:
    latencies: list[float]
    errors: collections.Counter[str]

    @property
    def count(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


def measure(
    base: str,
    path: str,
    clients: int,
    total: int,
    seconds: float,
    cookies: dict[str, str] | list[dict[str, str]],
) -> Result:
    """Latency (ms) of up to `total` GETs over `clients` threads, stopping after `seconds`; every
    answer other than 200 and every transport error is counted as an error. `cookies` is one
    sign-in for every client, or a list of them (client i uses the i-th, round robin)."""
    jars = cookies if isinstance(cookies, list) else [cookies]
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    per_client = max(1, total // clients)
    deadline = [0.0]
    # Clients are built first (an httpx.Client loads its TLS context); the clock starts after.
    start = threading.Barrier(clients, action=lambda: deadline.__setitem__(0, time.monotonic() + seconds))

    def worker(index: int) -> None:
        mine: list[float] = []
        bad: collections.Counter[str] = collections.Counter()
        with httpx.Client(base_url=base, cookies=jars[index % len(jars)], timeout=30) as client:
            start.wait()
            for _ in range(per_client):
                if time.monotonic() > deadline[0]:
                    break
                began = time.perf_counter()
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    bad[type(exc).__name__] += 1
                    continue
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code == 200:
                    mine.append(elapsed)
                else:
                    bad[str(response.status_code)] += 1
        with lock:
            latencies.extend(mine)
            errors.update(bad)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(latencies, errors)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux /proc), or NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Pair:
    page: Result
    static: Result
    page_cpu_ms: float  # server CPU per request
    static_cpu_ms: float


def side_by_side(
    base: str,
    path: str,
    static_path: str,
    clients: int,
    total: int,
    seconds: float,
    cookies: dict[str, str] | list[dict[str, str]],
    pid: int,
) -> Pair:
    """The page and the static file in `ROUNDS` alternating rounds (the static file first in odd
    rounds, the page first in even ones), each round a share of `total` requests and `seconds`,
    both with the same sign-in's cookies."""
    share, cap = max(clients, total // ROUNDS), seconds / ROUNDS
    page, static = Result([], collections.Counter()), Result([], collections.Counter())
    cpu = {"page": 0.0, "static": 0.0}
    for round_ in range(ROUNDS):
        order = [("static", static_path), ("page", path)]
        for kind, target in order if round_ % 2 else order[::-1]:
            before = cpu_seconds(pid)
            # The static file gets the page's cookies, as a browser sends them to the same origin:
            # the same request but for the resource (without them the file skipped the cookie
            # header's parsing on both sides, a third of a millisecond here).
            result = measure(base, target, clients, share, cap, cookies)
            cpu[kind] += cpu_seconds(pid) - before
            into = page if kind == "page" else static
            into.latencies += result.latencies
            into.errors.update(result.errors)
    return Pair(
        page,
        static,
        cpu["page"] * 1000 / max(1, page.count),
        cpu["static"] * 1000 / max(1, static.count),
    )


def _p(result: Result, q: int) -> float:
    if len(result.latencies) >= 2:
        return pct(result.latencies, q)
    return result.latencies[0] if result.latencies else float("nan")


def _errors(result: Result) -> str:
    if not result.errors:
        return "0"
    return " ".join(f"{n}x{kind}" for kind, n in sorted(result.errors.items()))


def pages(base: str, cookies: dict[str, str]) -> dict[str, str]:
    api = httpx.get(base + "/api/v1/outposts", params={"limit": 1}, cookies=cookies, timeout=120)
    api.raise_for_status()
    sample = api.json()["outposts"][0]["outpost_id"] if api.json().get("outposts") else "op-00000000000000001"
    from app.services.connectivity.queries import RANGES

    return {
        "overview": "/",
        **{f"outpost {key}": f"/outposts/{sample}?range={key}" for key in RANGES},
        "api": "/api/v1/outposts",
    }


def run_size(db: str, size: int, url: str, password: str | None, cfg: Config) -> list[str]:
    lines: list[str] = []
    token = secrets.token_hex(4)
    statics: list[Path] = []
    try:
        with server(url) as (base, process):
            cookies = sign_in(base, password)
            many = [sign_in(base, password) for _ in range(max(REQUESTS))]
            for name, path in pages(base, cookies).items():
                first = httpx.get(base + path, cookies=cookies, timeout=120)
                body = first.content
                static = STATIC_DIR / f"bench-scale-{token}-{len(statics)}.html"
                static.write_bytes(body)
                statics.append(static)
                static_path = f"/static/{static.name}"
                for clients, total in REQUESTS.items():
                    # 16 clients twice: on one sign-in (a wall display's tabs), then each on its own.
                    jars: list[tuple[str, dict[str, str] | list[dict[str, str]]]] = (
                        [("", cookies)] if clients == 1 else [(" (1 sign-in)", cookies), (" (16)", many)]
                    )
                    for label, jar in jars:
                        pair = side_by_side(
                            base, path, static_path, clients, total, cfg.seconds, jar, process.pid
                        )
                        page_result, base_result = pair.page, pair.static
                        ratio = _p(page_result, 50) / _p(base_result, 50)
                        line = (
                            f"| {db} | {size:,} | {name} | {clients}{label} | {len(body) / 1024:,.0f} KiB "
                            f"| {_p(page_result, 50):.1f} / {_p(page_result, 99):.1f} ms "
                            f"| {_p(base_result, 50):.1f} ms | {ratio:.2f} "
                            f"| {pair.page_cpu_ms:.2f} / {pair.static_cpu_ms:.2f} ms "
                            f"| {page_result.count} | {_errors(page_result)} |"
                        )
                        print(line, flush=True)
                        lines.append(line)
            rss = peak_rss_mib(process.pid)
        with server(url, LIFELINE_OVERVIEW_CACHE_SECONDS="0") as (base, _process):
            cookies = sign_in(base, password)
            cold = measure(base, "/", 1, 5, max(cfg.seconds, 30.0), cookies)
        line = (
            f"| {db} | {size:,} | cold overview (cache off) | 1 | | {_p(cold, 50):.0f} ms "
            f"| | | | {cold.count} | {_errors(cold)} |  peak RSS of the cached server: {rss:.0f} MiB"
        )
        print(line, flush=True)
        lines.append(line)
    finally:
        for static in statics:
            static.unlink(missing_ok=True)
    return lines


def main() -> None:
    sys.path.insert(0, str(ROOT))
    cfg = Config()
    tmp = Path(tempfile.mkdtemp(prefix="lifeline-bench-scale-"))
    header = (
        "| database | Outposts | page | clients | size | p50 / p99 | static p50 | ratio p50 "
        "| server CPU per request: page / static | requests | errors |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    print(
        f"history: {cfg.rollup_days} d of hourly rollups, {cfg.raw_hours} h of 60-second samples, "
        f"20 incidents per Outpost; up to {cfg.seconds:.0f} s per case; target ratio <= {TARGET_RATIO}"
    )
    lines: list[str] = []
    try:
        for db in cfg.databases:
            for size in cfg.sizes:
                now = dt.datetime.now(dt.UTC)
                began = time.perf_counter()
                url = seed(db, size, tmp, now, cfg)
                seeded = time.perf_counter() - began
                print(f"{db}, {size:,} Outposts: seeded in {seeded:.0f} s, {settle(db, url)}", flush=True)
                if not lines:
                    print(header)
                try:
                    password = create_viewer(url)
                    lines += run_size(db, size, url, password, cfg)
                finally:
                    drop(db, url, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n" + header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
