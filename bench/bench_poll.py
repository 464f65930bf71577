"""Benchmark (1): one connectivity poll cycle for 1,000 Outposts against moto.

Reports GetMetricData requests and *our own* CPU time per cycle (time.process_time of this process:
boto3 serialisation and parsing, SQLAlchemy, our code; moto runs in a separate `moto_server`
process so its work is not counted), next to a baseline measured in the same run: the naive
approach of one GetMetricData request per Outpost, timed on a sample and extrapolated.

Run: `python -m bench bench_poll` (about a minute; most of it is moto answering).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx

OUTPOSTS = 1000
NAIVE_SAMPLE = 40
TRAILING_MINUTES = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _moto_process() -> Iterator[str]:
    exe = Path(sys.executable).with_name("moto_server")
    command = [str(exe)] if exe.exists() else [shutil.which("moto_server") or "moto_server"]
    port = _free_port()
    proc = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")
    from app import migrate
    from app.db import create_db_engine, make_session_factory, session_scope
    from app.integrations.aws import AwsClients
    from app.integrations.cloudwatch import fetch_connected_status
    from app.jobs.connectivity import poll_connectivity
    from app.models.fleet import Outpost
    from app.settings import Settings

    with _moto_process() as endpoint, tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate.upgrade(url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            aws_endpoint_url=endpoint,
            poll_trailing_window_minutes=TRAILING_MINUTES,
            poll_initial_backfill_hours=0,
            aws_read_timeout_seconds=300,
        )
        engine = create_db_engine(url)
        factory = make_session_factory(engine)
        ids = [f"op-{i:017x}" for i in range(1, OUTPOSTS + 1)]
        with session_scope(factory) as session:
            session.add_all(Outpost(outpost_id=oid, name=oid, region="us-west-2") for oid in ids)

        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(seconds=30)
        cw: Any = boto3.client("cloudwatch", region_name="us-west-2", endpoint_url=endpoint)
        start = now.replace(second=0) - dt.timedelta(minutes=TRAILING_MINUTES)
        data: list[dict[str, Any]] = [
            {
                "MetricName": "ConnectedStatus",
                "Dimensions": [{"Name": "OutpostId", "Value": oid}],
                "Timestamp": start + dt.timedelta(minutes=m),
                "Value": 0.0 if (i % 50 == 0 and m >= 3) else 1.0,
            }
            for i, oid in enumerate(ids)
            for m in range(TRAILING_MINUTES)
        ]
        for offset in range(0, len(data), 1000):
            cw.put_metric_data(Namespace="AWS/Outposts", MetricData=data[offset : offset + 1000])

        rows = []
        for label, at in (
            ("first cycle (5 min x 1,000 new samples)", now),
            ("re-poll, nothing new (idempotent)", now + dt.timedelta(seconds=10)),
            ("next minute (1,000 new samples, steady state)", now + dt.timedelta(minutes=1)),
        ):
            if at > now + dt.timedelta(seconds=30):
                minute = [
                    {**item, "Timestamp": item["Timestamp"] + dt.timedelta(minutes=1)}
                    for item in data[TRAILING_MINUTES - 1 :: TRAILING_MINUTES]
                ]
                for offset in range(0, len(minute), 1000):
                    cw.put_metric_data(Namespace="AWS/Outposts", MetricData=minute[offset : offset + 1000])
            (result,), cpu, wall = _measure(functools.partial(poll_connectivity, settings, factory, now=at))
            rows.append((label, result.requests, cpu, wall, result.samples_written))

        # Baseline: one request per Outpost (what a naive poller does), on a sample, extrapolated.
        clients = AwsClients.from_settings(settings)
        window_end = now.replace(second=0)
        window = (window_end - dt.timedelta(minutes=TRAILING_MINUTES), window_end, 60)

        naive_client = clients.client("cloudwatch", "us-west-2")

        def naive() -> int:
            # One reused client, one single-query GetMetricData per Outpost, values parsed.
            values = 0
            for oid in ids[:NAIVE_SAMPLE]:
                response = naive_client.get_metric_data(
                    MetricDataQueries=[
                        {
                            "Id": "q0",
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "AWS/Outposts",
                                    "MetricName": "ConnectedStatus",
                                    "Dimensions": [{"Name": "OutpostId", "Value": oid}],
                                },
                                "Period": 60,
                                "Stat": "Average",
                            },
                        }
                    ],
                    StartTime=window[0],
                    EndTime=window[1],
                )
                values += sum(len(r["Values"]) for r in response["MetricDataResults"])
            return values

        _, naive_cpu, naive_wall = _measure(naive)
        scale = OUTPOSTS / NAIVE_SAMPLE
        # Our fetch alone (no database), to split the cycle's CPU between AWS calls and storage.
        fetched, fetch_cpu, fetch_wall = _measure(
            lambda: fetch_connected_status(clients, "us-west-2", [(*window, ids)])
        )
        engine.dispose()

    print(f"Poll cycle for {OUTPOSTS} Outposts, {TRAILING_MINUTES}-minute window, moto in its own process")
    print(f"{'case':<48} {'requests':>8} {'our CPU s':>10} {'wall s':>8} {'written':>8}")
    for label, requests, cpu, wall, written in rows:
        print(f"{label:<48} {requests:>8} {cpu:>10.3f} {wall:>8.2f} {written:>8}")
    fetch_label = "  of which fetch only (no database)"
    print(f"{fetch_label:<48} {fetched.requests:>8} {fetch_cpu:>10.3f} {fetch_wall:>8.2f}")
    naive_label = f"baseline: 1 request per Outpost (x{scale:.0f} of {NAIVE_SAMPLE})"
    print(f"{naive_label:<48} {OUTPOSTS:>8} {naive_cpu * scale:>10.3f} {naive_wall * scale:>8.2f}")
    print(
        f"batched fetch uses {OUTPOSTS // fetched.requests}x fewer requests and "
        f"{naive_cpu * scale / max(fetch_cpu, 1e-9):.1f}x less client CPU than the baseline"
    )


if __name__ == "__main__":
    main()
