"""Benchmark (2) of issue 2: the overview page with 200 Outposts and a year of history.

Seeds a SQLite database (a year of hourly rollups, 15 days of 60-second samples, some incidents),
serves it with uvicorn in a subprocess, and measures the latency of `/` at 1 and 16 concurrent
clients side by side with a static file of the same size served by the same server (the
baseline). Target: overview p50 <= 2x the static file's p50. A second server with the fragment
cache off shows what one full render costs (it runs once per poll and query in production).

Run: `python -m bench bench_overview` (or `make bench`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# The half-hour rollups the strip reads, filled from the samples as migration 0026's backfill does
# (record_samples keeps them when the poller writes).
HALF_HOUR_SQL = {
    "sqlite": """
        INSERT INTO halfhour_rollups (outpost_pk, start, connected_seconds, known_seconds, min_value, samples)
        SELECT outpost_pk, strftime('%Y-%m-%d %H:', ts)
                 || CASE WHEN CAST(strftime('%M', ts) AS INTEGER) < 30
                         THEN '00:00.000000' ELSE '30:00.000000' END,
               SUM(value * period_seconds), SUM(period_seconds), MIN(value), COUNT(*)
        FROM connected_samples GROUP BY 1, 2
        """,
    "postgresql": """
        INSERT INTO halfhour_rollups (outpost_pk, start, connected_seconds, known_seconds, min_value, samples)
        SELECT outpost_pk, (date_trunc('hour', ts AT TIME ZONE 'UTC')
                 + floor(extract(minute FROM ts AT TIME ZONE 'UTC') / 30) * interval '30 minutes')
                 AT TIME ZONE 'UTC',
               SUM(value * period_seconds), SUM(period_seconds), MIN(value), COUNT(*)
        FROM connected_samples GROUP BY 1, 2
        """,
}

ROOT = Path(__file__).resolve().parents[1]
STATIC_DIR = ROOT / "static"
OUTPOSTS = 200
ROLLUP_DAYS = 365
RAW_DAYS = 15
TARGET_RATIO = 2.0
REQUESTS = {1: 150, 16: 640}


def _fmt(moment: dt.datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(url: str, path: Path, now: dt.datetime) -> dict[str, int]:
    """Migrate, then bulk-load history with set-based SQL (minutes, not hours, for 6 M rows)."""
    from app import migrate

    migrate.upgrade(url)
    hour = now.replace(minute=0, second=0, microsecond=0)
    raw_start = now.replace(second=0, microsecond=0) - dt.timedelta(days=RAW_DAYS)
    rollup_start = hour - dt.timedelta(days=ROLLUP_DAYS)
    states = ["CONNECTED"] * 170 + ["DEGRADED"] * 10 + ["DISCONNECTED"] * 12 + ["UNKNOWN"] * 8
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        outposts = []
        for i in range(OUTPOSTS):
            state = states[i]
            value = {"CONNECTED": 1.0, "DEGRADED": 0.5, "DISCONNECTED": 0.0}.get(state)
            error = (
                "AccessDenied: not authorized to perform cloudwatch:GetMetricData" if i % 67 == 5 else None
            )
            outposts.append(
                (
                    f"op-{i:017x}",
                    f"Site {i:03d}, rack {'ABCD'[i % 4]}",
                    ["us-west-2", "us-east-1", "eu-west-1", "ap-southeast-2"][i % 4],
                    state,
                    _fmt(now - dt.timedelta(hours=i % 48)),
                    _fmt(now - dt.timedelta(minutes=1 if state != "UNKNOWN" else 30)),
                    value,
                    error,
                    _fmt(now) if error else None,
                    _fmt(now),
                    _fmt(now),
                )
            )
        conn.executemany(
            "INSERT INTO outposts (outpost_id, name, region, source, state, state_since, last_sample_at,"
            " last_value, last_error, last_error_at, created_at, updated_at)"
            " VALUES (?, ?, ?, 'file', ?, ?, ?, ?, ?, ?, ?, ?)",
            outposts,
        )
        raw_minutes = RAW_DAYS * 24 * 60
        rollup_hours = ROLLUP_DAYS * 24
        # Raw: connected, with a 5-minute outage a day and a degraded half hour every 3 days,
        # per-Outpost phase so strips differ; 1 minute in 400 missing (a gap).
        conn.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO connected_samples (outpost_pk, ts, value, period_seconds)
            SELECT o.id,
                   strftime('%Y-%m-%d %H:%M:%S', datetime(?, '+' || n.i || ' minutes')) || '.000000',
                   CASE WHEN (n.i + o.id * 37) % 1440 < 5 THEN 0.0
                        WHEN (n.i + o.id * 53) % 4320 < 30 THEN 0.5 ELSE 1.0 END,
                   60
            FROM outposts o CROSS JOIN n
            WHERE (n.i + o.id) % 400 != 0
            """,
            (raw_minutes - 1, raw_start.strftime("%Y-%m-%d %H:%M:%S")),
        )
        conn.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO hourly_rollups
                (outpost_pk, hour, connected_seconds, known_seconds, min_value, avg_value, samples)
            SELECT o.id,
                   strftime('%Y-%m-%d %H:%M:%S', datetime(?, '+' || n.i || ' hours')) || '.000000',
                   CASE WHEN (n.i + o.id) % 50 = 0 THEN 3000.0 ELSE 3600.0 END,
                   3600.0,
                   CASE WHEN (n.i + o.id) % 50 = 0 THEN 0.0 ELSE 1.0 END,
                   CASE WHEN (n.i + o.id) % 50 = 0 THEN 0.8333 ELSE 1.0 END,
                   60
            FROM outposts o CROSS JOIN n
            WHERE (n.i + o.id) % 97 != 0
            """,
            (rollup_hours, rollup_start.strftime("%Y-%m-%d %H:%M:%S")),
        )
        conn.execute(
            """
            INSERT INTO daily_rollups (outpost_pk, day, connected_seconds, known_seconds, min_value, samples)
            SELECT outpost_pk, strftime('%Y-%m-%d 00:00:00.000000', hour), SUM(connected_seconds),
                   SUM(known_seconds), MIN(min_value), SUM(samples)
            FROM hourly_rollups GROUP BY outpost_pk, strftime('%Y-%m-%d 00:00:00.000000', hour)
            """
        )
        conn.execute(HALF_HOUR_SQL["sqlite"])
        incidents = []
        for pk in range(1, OUTPOSTS + 1):
            for day in range(1, 60, 3):
                start = hour - dt.timedelta(days=day, minutes=pk % 60)
                end = start + dt.timedelta(minutes=5 + pk % 20)
                incidents.append((pk, _fmt(start), _fmt(end), 0.0, _fmt(end)))
        conn.executemany(
            "INSERT INTO incidents (outpost_pk, started_at, ended_at, worst_value, last_below_at)"
            " VALUES (?, ?, ?, ?, ?)",
            incidents,
        )
        conn.execute(
            "INSERT INTO poll_runs (job, scope, started_at, finished_at, outcome, requests, items)"
            " VALUES ('connectivity', 'us-west-2', ?, ?, 'ok', 1, 200)",
            (_fmt(now - dt.timedelta(seconds=32)), _fmt(now - dt.timedelta(seconds=30))),
        )
        conn.commit()
        conn.execute("ANALYZE")
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("outposts", "connected_samples", "hourly_rollups", "incidents")
        }
    finally:
        conn.close()
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(url: str, **env: str) -> Iterator[str]:
    """uvicorn in a subprocess (no scheduler), until the block ends."""
    port = free_port()
    environment = {**os.environ, "LIFELINE_DATABASE_URL": url, **env}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def create_viewer(url: str) -> str | None:
    """Once accounts exist (issue 4): a viewer created through the services; returns its password."""
    try:
        from app.services.accounts import users
    except ImportError:
        return None
    from app.db import create_db_engine, make_session_factory, session_scope
    from app.services.audit import Actor

    password = secrets.token_urlsafe(18)
    engine = create_db_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        users.create_user(
            session, username="bench", password=password, role="viewer", actor=Actor(name="bench")
        )
    engine.dispose()
    return password


def sign_in(base: str, password: str | None) -> dict[str, str]:
    """The session cookies of the bench viewer (none before accounts exist)."""
    if password is None:
        return {}
    with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as client:
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]*)"', form)
        data = {"username": "bench", "password": password, "next": "/"}
        if token:
            data["csrf_token"] = token.group(1)
        response = client.post("/login", data=data)
        if response.status_code not in (302, 303):
            raise RuntimeError(f"sign-in failed: {response.status_code}")
        return dict(client.cookies)


def measure(base: str, path: str, clients: int, total: int, cookies: dict[str, str]) -> list[float]:
    """Latency in ms of `total` GETs spread over `clients` threads, each with a keep-alive client."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def worker() -> None:
        with httpx.Client(base_url=base, cookies=cookies, timeout=60) as client:
            client.get(path).raise_for_status()  # warm the connection
            mine = []
            for _ in range(per_client):
                started = time.perf_counter()
                response = client.get(path)
                mine.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="lifeline-bench-"))
    db_path = tmp / "bench.db"
    url = f"sqlite:///{db_path}"
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    counts = seed(url, db_path, now)
    print(
        f"seeded in {time.perf_counter() - started:.0f} s: {counts['outposts']} Outposts, "
        f"{counts['connected_samples']:,} raw samples ({RAW_DAYS} d), "
        f"{counts['hourly_rollups']:,} hourly rollups ({ROLLUP_DAYS} d), {counts['incidents']:,} incidents"
    )
    static_file = STATIC_DIR / f"bench-overview-{secrets.token_hex(4)}.html"
    try:
        password = create_viewer(url)
        # Every row on one page, as when the baseline below was first measured (issue 20 pages it).
        with server(url, LIFELINE_OVERVIEW_PAGE_SIZE=str(OUTPOSTS)) as base:
            cookies = sign_in(base, password)
            page = httpx.get(base + "/", cookies=cookies, timeout=60)
            page.raise_for_status()
            rows = page.text.count("<tr data-outpost-id=")
            assert rows == OUTPOSTS, f"overview shows {rows} rows, expected {OUTPOSTS}"
            static_file.write_bytes(page.content)
            static_path = f"/static/{static_file.name}"
            print(f"overview: {len(page.content):,} bytes, {rows} rows; static baseline {static_path}")
            print(f"{'clients':>7} {'page':<10} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
            ratios = {}
            for clients, total in REQUESTS.items():
                results = {}
                for name, path in (("static", static_path), ("overview", "/")):
                    t0 = time.perf_counter()
                    lat = measure(base, path, clients, total, cookies)
                    rate = len(lat) / (time.perf_counter() - t0)
                    results[name] = (pct(lat, 50), pct(lat, 95))
                    print(
                        f"{clients:>7} {name:<10} {results[name][0]:>8.1f} "
                        f"{results[name][1]:>8.1f} {rate:>8.0f}"
                    )
                ratios[clients] = results["overview"][0] / results["static"][0]
                print(
                    f"{clients:>7} ratio p50 overview/static = {ratios[clients]:.2f} "
                    f"(p95 {results['overview'][1] / results['static'][1]:.2f}); target <= {TARGET_RATIO:.1f}"
                )
        with server(
            url, LIFELINE_OVERVIEW_CACHE_SECONDS="0", LIFELINE_OVERVIEW_PAGE_SIZE=str(OUTPOSTS)
        ) as base:
            cookies = sign_in(base, password)
            lat = measure(base, "/", 1, 20, cookies)
            print(
                "uncached full render (cache off, 1 client): "
                f"p50 {pct(lat, 50):.0f} ms, p95 {pct(lat, 95):.0f} ms"
            )
        verdict = all(r <= TARGET_RATIO for r in ratios.values())
        print("target met" if verdict else "TARGET MISSED", {c: round(r, 2) for c, r in ratios.items()})
    finally:
        static_file.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
