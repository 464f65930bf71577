"""`lifeline simulate` subcommands: a standalone simulated EKS local cluster API server."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="simulate commands", no_args_is_help=True)


@app.command("cluster")
def cluster(
    manifests: Annotated[
        Path, typer.Option("--manifests", help="Multi-document YAML or a List (kubectl -o yaml).")
    ],
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0 picks a free one)."),
    addresses: Annotated[
        list[str] | None,
        typer.Option(
            "--address",
            help="Listen on this loopback address instead of 127.0.0.1 (repeat it, one per control-plane "
            "IP: same port on each; they are in the serving certificate).",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Keeps the cluster CA and id across restarts (ca.key is mode 0600)."
        ),
    ] = None,
    write_kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--write-kubeconfig", help="Write an x509 cluster-admin (system:masters) kubeconfig here."
        ),
    ] = None,
    disconnected: bool = typer.Option(False, "--disconnected", help="Start with the Outpost disconnected."),
    name: str = typer.Option("local-cluster", "--name", help="Cluster name (kubeconfig context)."),
    endpoint_hostname: str | None = typer.Option(
        None,
        "--endpoint-hostname",
        help="The endpoint's DNS name (in the serving certificate), e.g. "
        "ABCDEF0123456789ABCDEF0123456789.gr7.us-west-2.eks.amazonaws.com.",
    ),
    cluster_uid: str | None = typer.Option(
        None, "--cluster-id", help="Cluster id for EKS tokens (default: new)."
    ),
    kubernetes_version: str = typer.Option(
        "1.30.9", "--kubernetes-version", help="Version /version reports."
    ),
) -> None:
    """Serve a simulated EKS local cluster until Ctrl-C."""
    from lifeline_simulator import ManifestError, SimulatedCluster

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import ipaddress

    for address in addresses or ():
        try:
            loopback = ipaddress.ip_address(address).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            typer.echo(f"lifeline simulate: --address {address} is not a loopback address", err=True)
            raise typer.Exit(2)
    if not manifests.is_file():
        typer.echo(f"lifeline simulate: {manifests} is not a file", err=True)
        raise typer.Exit(2)
    try:
        sim = SimulatedCluster(
            name=name,
            cluster_uid=cluster_uid,
            manifests=manifests,
            endpoint_hostname=endpoint_hostname,
            state_dir=state_dir,
            addresses=tuple(addresses or ()),
            port=port,
            kubernetes_version=kubernetes_version,
            connected=not disconnected,
        )
    except ManifestError as exc:
        typer.echo(f"lifeline simulate: invalid manifests: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        sim.start()
    except OSError as exc:
        where = ", ".join(addresses or ["127.0.0.1"])
        typer.echo(f"lifeline simulate: cannot listen on {where} port {port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(f"simulated cluster {name} at {sim.url} (cluster id {sim.cluster_uid})")
    if endpoint_hostname:
        typer.echo(
            f"  endpoint {sim.endpoint} on {', '.join(sim.addresses)} (not in DNS: use --tls-server-name)"
        )
    state = "disconnected" if disconnected else "connected"
    typer.echo(f"  outpost {state}: POST {sim.url}/-/disconnect or {sim.url}/-/connect")
    if write_kubeconfig is not None:
        sim.write_admin_kubeconfig(write_kubeconfig)
        typer.echo(f"  admin kubeconfig: {write_kubeconfig} (kubernetes-admin, system:masters)")
    typer.echo("Ctrl-C stops")
    try:
        stop.wait()
    finally:
        sim.stop()
        typer.echo("stopped")
