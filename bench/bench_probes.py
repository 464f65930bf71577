"""Benchmark (issue 13): how fast the overview shows a demo switch through the site probes, beside
the CloudWatch-only time measured in the same run; and the CPU cost of the probes for 50 clusters
in 6 regions at the default 10 s interval.

Part 1 runs the demo fleet in this process (moto, three simulated clusters, the scheduler with its
default intervals: probes 10 s, CloudWatch polls 60 s) and flips `plant7-local`'s Outpost several
times; each figure is the time from the switch until the overview's verdict (the function the page
renders, `_overview_with_site_view`) shows the new state, and until CloudWatch's state does. A
browser sees it up to one refresh later (3 s on the demo page).

Part 2 runs moto and 50 simulated clusters in a child process (their CPU is not counted) and
measures this process's CPU per probe cycle (`time.process_time`), next to a baseline measured in
the same run: the same IAM + x509 checks through the kubernetes client (`choose_identity`, what the
readiness poller uses).

Run: `python -m bench bench_probes` (BENCH_SWITCHES=2 by default: about 10 minutes, nearly all of
it waiting for CloudWatch).
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

CLUSTERS = 50
REGIONS = ("us-west-2", "us-east-1", "eu-central-1", "eu-west-1", "ap-southeast-2", "ca-central-1")
CYCLES = 6
OUTPOST = "op-0f1e2d3c4b5a69781"  # Plant 7 Reno, rack A, runs plant7-local


def _settings(database_url: str, endpoint: str, **extra: Any) -> Any:
    from app.settings import load_settings

    return load_settings(
        _env_file=None,
        database_url=database_url,
        aws_endpoint_url=endpoint,
        **extra,
    )


# ---------------------------------------------------------------- part 1: the demo switch


def _switch_times(switches: int) -> list[tuple[str, float | None, float | None]]:
    from app import migrate
    from app.db import create_db_engine, make_session_factory, session_scope
    from app.jobs import fleet as fleet_job
    from app.jobs.scheduler import build_scheduler
    from app.web.connectivity.overview import _overview_with_site_view
    from lifeline_demo.cli import DEMO_AWS_ENVIRONMENT, _register_fleet
    from lifeline_demo.fleet import DEMO_REGIONS, DemoFleet

    os.environ.update(DEMO_AWS_ENVIRONMENT)
    folder = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    url = f"sqlite:///{folder / 'demo.db'}"
    fleet = DemoFleet().start()
    settings = _settings(
        url,
        fleet.endpoint_url,
        aws_regions=list(DEMO_REGIONS),
        vantage="bench-dashboard",
        probe_control_plane_ips=False,
        poll_initial_backfill_hours=int(fleet.history.total_seconds() // 3600),
    )
    migrate.upgrade(url)
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    _register_fleet(settings, factory, fleet)
    fleet_job.run_once(settings, factory)  # discovery: clusters with endpoint and CA
    scheduler = build_scheduler(settings, factory)
    scheduler.start()
    results: list[tuple[str, float | None, float | None]] = []

    def states() -> tuple[str, str]:
        with session_scope(factory) as session:
            now = dt.datetime.now(dt.UTC)
            data, verdicts = _overview_with_site_view(session, settings.vantage, now, None, None, "state")
            row = next(r for r in data.rows if r.outpost.outpost_id == OUTPOST)
            return verdicts[row.outpost.id].state, row.outpost.state

    try:
        deadline = time.monotonic() + 240
        while states() != ("CONNECTED", "CONNECTED"):  # the first poll and probe cycles
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo never settled: {states()}")
            time.sleep(1)
        for _ in range(switches):
            for connected in (False, True):
                wanted = "CONNECTED" if connected else "DISCONNECTED"
                fleet.set_connected(OUTPOST, connected)
                started = time.monotonic()
                fast = cloudwatch = None
                while time.monotonic() - started < 300 and (fast is None or cloudwatch is None):
                    overview_state, cw_state = states()
                    elapsed = time.monotonic() - started
                    if fast is None and overview_state == wanted:
                        fast = elapsed
                    if cloudwatch is None and cw_state == wanted:
                        cloudwatch = elapsed
                    time.sleep(0.25)
                results.append(("reconnect" if connected else "disconnect", fast, cloudwatch))
                print(
                    f"  {results[-1][0]:<10} overview {_fmt(fast)}   CloudWatch only {_fmt(cloudwatch)}",
                    flush=True,
                )
    finally:
        scheduler.shutdown(wait=True)
        fleet.stop()
        engine.dispose()
    return results


def _fmt(value: float | None) -> str:
    return f"{value:6.1f} s" if value is not None else "  (none)"


# ---------------------------------------------------------------- part 2: CPU for 50 clusters


def _serve(queue: Any, stop: Any, folder: str) -> None:
    """Child process: moto and CLUSTERS simulated clusters; reports their facts, waits for `stop`."""
    logging.disable(logging.CRITICAL)
    import socket

    from moto.server import ThreadedMotoServer

    from lifeline_simulator import SimulatedCluster

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    sims = []
    facts = []
    for index in range(CLUSTERS):
        sim = SimulatedCluster(name=f"site{index:02d}-local").start()
        sim.write_admin_kubeconfig(
            Path(folder) / f"{sim.name}.yaml", user="lifeline-fallback", groups=("view",)
        )
        sims.append(sim)
        facts.append((sim.name, sim.url, sim.ca_data, sim.cluster_uid))
    queue.put((f"http://127.0.0.1:{port}", facts))
    stop.wait()
    for sim in sims:
        sim.stop()
    moto.stop()


def _cpu_cost() -> tuple[float, float, float, int]:
    from app import migrate
    from app.db import create_db_engine, make_session_factory, session_scope
    from app.integrations.aws import AwsClients
    from app.integrations.kube.identity import choose_identity, token_cache
    from app.integrations.kube.types import ClusterTarget
    from app.jobs import probes
    from app.jobs.readiness import kubeconfig_identity
    from app.models import Cluster, Outpost

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    folder = Path(tempfile.mkdtemp(prefix="bench-probes-cpu-"))
    context = multiprocessing.get_context("spawn")
    queue, stop = context.Queue(), context.Event()
    child = context.Process(target=_serve, args=(queue, stop, str(folder / "x509")), daemon=True)
    child.start()
    try:
        endpoint, facts = queue.get(timeout=300)
        url = f"sqlite:///{folder / 'cpu.db'}"
        migrate.upgrade(url)
        engine = create_db_engine(url)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            for index, (name, sim_url, ca_data, uid) in enumerate(facts):
                region = REGIONS[index % len(REGIONS)]
                outpost = Outpost(outpost_id=f"op-{index:017x}", name=f"Site {index}", region=region)
                session.add(outpost)
                session.flush()
                session.add(
                    Cluster(
                        name=name,
                        region=region,
                        outpost_pk=outpost.id,
                        endpoint=sim_url,
                        certificate_authority=ca_data,
                        cluster_uid=uid,
                    )
                )
        settings = _settings(url, endpoint, vantage="bench", readiness_x509_kubeconfig_dir=folder / "x509")
        runner = probes.Runner.from_settings(settings)
        probes.probe_cycle(settings, factory, runner)  # warm: contexts, tokens, boto3 clients
        cpu: list[float] = []
        wall: list[float] = []
        count = 0
        for _ in range(CYCLES):
            before, started = time.process_time(), time.monotonic()
            result = probes.probe_cycle(settings, factory, runner)
            cpu.append(time.process_time() - before)
            wall.append(time.monotonic() - started)
            count = result.probes
        # Baseline: the same two authentications per cluster through the kubernetes client.
        clients = AwsClients.from_settings(settings)
        tokens = token_cache(clients)
        before = time.process_time()
        for name, sim_url, ca_data, uid in facts:
            target = ClusterTarget(name, "us-west-2", sim_url, ca_data, uid)
            choice = choose_identity(
                target,
                tokens=tokens,
                x509=kubeconfig_identity(folder / "x509" / f"{name}.yaml"),
                x509_missing="-",
                timeout=5,
                probe_both=True,
            )
            if choice.connection is not None:
                choice.connection.close()
        baseline = time.process_time() - before
        engine.dispose()
        return statistics.median(cpu), statistics.median(wall), baseline, count
    finally:
        stop.set()
        child.join(timeout=30)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    interval = 10
    cpu, wall, baseline, count = _cpu_cost()
    print(
        f"CPU for {CLUSTERS} clusters x {len(REGIONS)} regions ({count} probes a cycle, every {interval} s):"
    )
    share, base_share = 100 * cpu / interval, 100 * baseline / interval
    print(f"  site probes: {cpu * 1000:7.1f} ms CPU a cycle ({wall:.2f} s wall) = {share:.1f}% of one core")
    print(f"  baseline, kubernetes client: {baseline * 1000:7.1f} ms = {base_share:.1f}% of one core")
    switches = int(os.environ.get("BENCH_SWITCHES", "2"))
    if switches <= 0:
        return
    print(f"\nDemo switch -> overview shows it ({switches} switches each way; target <= 15 s):")
    results = _switch_times(switches)
    for direction in ("disconnect", "reconnect"):
        fast = [f for d, f, _ in results if d == direction and f is not None]
        slow = [c for d, _, c in results if d == direction and c is not None]
        if fast and slow:
            site_view = f"median {statistics.median(fast):5.1f} s, max {max(fast):5.1f} s"
            cloudwatch = f"median {statistics.median(slow):5.1f} s, max {max(slow):5.1f} s"
            print(f"  {direction:<10} site probes: {site_view}   CloudWatch only: {cloudwatch}")


if __name__ == "__main__":
    main()
