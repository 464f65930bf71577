"""Benchmark of issue 20's write side: a poll cycle's storage CPU against the history already stored.

A poll cycle is a fetch from CloudWatch (bench_poll: its cost has nothing to do with the database)
and the storage of what came back: `status.record_samples` (samples, half-hour, hourly and daily
rollups, incidents, in one transaction), `status.refresh_states` and `status.store_uptime` (every
Outpost's uptime per window, kept for readers; its share is printed beside the total). This
benchmark seeds 1,000 Outposts with 2 days, 90 days and a year of history (bench_scale's set-based
seeding), then times that storage for 1 and for 5 new minutes of samples per Outpost. The 2-day
database is the baseline measured in the same run: the target is a cost that grows at most in
proportion to the new samples (5 minutes at most about 5x one minute; most of it is per Outpost
polled) and not with the stored history (a year about the same as 2 days).

CPU is this process's (`time.process_time`: on SQLite the database's work is in it, on PostgreSQL
the server's is not), wall time beside it. Run: `python -m bench bench_write`. Knobs:
  LIFELINE_BENCH_DATABASES      "sqlite,postgresql" (default both)
  LIFELINE_BENCH_HISTORY_DAYS   default "2,90,365"
  LIFELINE_BENCH_WRITE_OUTPOSTS default 1000
  LIFELINE_BENCH_PG_URL, LIFELINE_BENCH_PG_PREFIX as in bench_scale
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_scale import ROOT, Config, _env_list, drop, seed

ROUNDS = 3


def _store(url: str, minutes: int, start: dt.datetime) -> tuple[float, float, int, float]:
    """CPU and wall seconds to store `minutes` new samples per Outpost, how many were written, and
    the CPU seconds of storing the uptime windows (inside the first figure)."""
    from sqlalchemy import select

    from app.db import create_db_engine, make_session_factory, session_scope
    from app.integrations.cloudwatch import Datapoint
    from app.models import Outpost
    from app.services.connectivity import status

    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as session:
            outposts = list(session.scalars(select(Outpost)))
            points = {
                o.id: [
                    Datapoint(start + dt.timedelta(minutes=m), 0.0 if (o.id + m) % 50 == 0 else 1.0, 60)
                    for m in range(minutes)
                ]
                for o in outposts
            }
            end = start + dt.timedelta(minutes=minutes)
            cpu, wall = time.process_time(), time.perf_counter()
            recorded = status.record_samples(session, points)
            status.refresh_states(session, outposts, end)
            uptime_cpu = time.process_time()
            status.store_uptime(session, [o.id for o in outposts], end, valid_for=dt.timedelta(minutes=3))
            uptime_cpu = time.process_time() - uptime_cpu
            session.flush()
        return time.process_time() - cpu, time.perf_counter() - wall, recorded.inserted, uptime_cpu
    finally:
        engine.dispose()


def main() -> None:
    sys.path.insert(0, str(ROOT))
    databases = _env_list("LIFELINE_BENCH_DATABASES", "sqlite,postgresql")
    history = [int(d) for d in _env_list("LIFELINE_BENCH_HISTORY_DAYS", "2,90,365")]
    size = int(os.environ.get("LIFELINE_BENCH_WRITE_OUTPOSTS", "1000"))
    tmp = Path(tempfile.mkdtemp(prefix="lifeline-bench-write-"))
    lines: list[str] = []
    print(f"storage of one poll cycle for {size:,} Outposts; median of {ROUNDS} cycles per case")
    header = (
        "| database | history | new samples | CPU ms | of which uptime | wall ms "
        "| CPU vs 2 d (same new samples) |\n"
        "|---|---|---|---|---|---|---|"
    )
    try:
        for db in databases:
            baseline: dict[int, float] = {}
            for days in history:
                cfg = dataclasses.replace(
                    Config(), rollup_days=days, raw_hours=26, pg_prefix="lifeline_bench_write"
                )
                now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
                began = time.perf_counter()
                url = seed(db, size, tmp, now, cfg)
                print(f"{db}, {days} d of history: seeded in {time.perf_counter() - began:.0f} s", flush=True)
                try:
                    # New minutes land after the seeded samples, one cycle after another.
                    at = now + dt.timedelta(minutes=1)
                    for minutes in (1, 5):
                        runs = []
                        for _ in range(ROUNDS):
                            runs.append(_store(url, minutes, at))
                            at += dt.timedelta(minutes=minutes)
                        cpu = statistics.median(r[0] for r in runs) * 1000
                        wall = statistics.median(r[1] for r in runs) * 1000
                        uptime = statistics.median(r[3] for r in runs) * 1000
                        written = runs[0][2]
                        baseline.setdefault(minutes, cpu)
                        line = (
                            f"| {db} | {days} d | {written:,} ({minutes} min) | {cpu:.0f} | {uptime:.0f} "
                            f"| {wall:.0f} "
                            f"| {cpu / baseline[minutes]:.2f} |"
                        )
                        print(line, flush=True)
                        lines.append(line)
                finally:
                    drop(db, url, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n" + header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
