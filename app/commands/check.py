"""`lifeline check --manifests FILE`: the readiness catalogue against a manifest dump, for CI.

No cluster, no AWS, no database: checks that need them report `unknown`. Exit status 1 when a
finding reaches --fail-on, 2 when the manifests cannot be read.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.commands.common import terminal_safe
from app.integrations.kube.manifests import ManifestError, ManifestReading, read_manifest_text, read_manifests
from app.services.readiness.catalogue import evaluate, score, severity_reached, unseen_attestations
from app.services.readiness.export import dumps, to_json, to_sarif, to_table
from app.services.readiness.model import CheckContext
from app.services.readiness.snapshot import snapshot_from_objects


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"


class FailOn(enum.StrEnum):
    warn = "warn"
    fail = "fail"
    never = "never"


app = typer.Typer(help="Evaluate readiness checks against a manifest dump.")


@app.callback(invoke_without_command=True)
def check(
    ctx: typer.Context,
    manifests: Annotated[
        Path,
        typer.Option(
            "--manifests", "-f", help="Multi-document YAML or `kubectl get ... -o yaml` List ('-' = stdin)."
        ),
    ],
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table, json or sarif.")
    ] = OutputFormat.table,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 when a finding reaches this status.")
    ] = FailOn.fail,
    horizon_hours: Annotated[
        int, typer.Option("--horizon-hours", min=1, help="Disconnect horizon in hours.")
    ] = 72,
    local_registry: Annotated[
        list[str] | None,
        typer.Option(
            "--local-registry", help="A registry or mirror reachable while disconnected (repeatable)."
        ),
    ] = None,
    surge_percent: Annotated[
        int, typer.Option("--surge-percent", min=0, help="Headroom to keep for a surge, in percent.")
    ] = 25,
    cluster_name: Annotated[
        str, typer.Option("--cluster-name", help="Name shown in the report.")
    ] = "manifests",
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Documents that cannot be read are reported but do not make the exit status 2.",
        ),
    ] = False,
) -> None:
    """Evaluate the readiness catalogue against FILE; exit non-zero when findings reach --fail-on."""
    if ctx.invoked_subcommand is not None:
        return
    reading = _read(manifests)
    for error in reading.errors:
        typer.echo(terminal_safe(f"lifeline check: skipped {error}"), err=True)
    if reading.errors and not reading.objects:
        typer.echo("lifeline check: no document could be used; nothing was checked", err=True)
        raise typer.Exit(2)
    objects = reading.objects
    context = CheckContext(
        horizon_hours=horizon_hours, local_registries=tuple(local_registry or ()), surge_percent=surge_percent
    )
    findings = evaluate(snapshot_from_objects(objects, cluster_name), context, attestations=None)
    findings += unseen_attestations()  # every catalogue topic appears, as `unknown` here
    if output == OutputFormat.json:
        typer.echo(dumps(to_json(findings)))
    elif output == OutputFormat.sarif:
        typer.echo(dumps(to_sarif(findings, artifact_uri=str(manifests), skipped=reading.errors)))
    else:
        typer.echo(terminal_safe(to_table(findings)))
        typer.echo(f"readiness score {score(findings)}/100 (unknown checks cost a quarter of their weight)")
        if reading.errors:
            typer.echo(
                f"{len(reading.errors)} document(s) or item(s) could not be read and were not checked"
                " (listed on stderr)"
            )
    if fail_on != FailOn.never and severity_reached(findings, fail_on.value):
        raise typer.Exit(1)
    if reading.errors and not skip_invalid:
        raise typer.Exit(2)


def _read(manifests: Path) -> ManifestReading:
    """Every usable object of FILE (or stdin); a file that cannot be opened at all ends the run."""
    try:
        if str(manifests) == "-":
            return read_manifests(sys.stdin.read(), source="<stdin>")
        if not manifests.is_file():
            typer.echo(f"lifeline check: {manifests}: no such file", err=True)
            raise typer.Exit(2)
        return read_manifests(read_manifest_text(manifests), source=str(manifests))
    except ManifestError as exc:
        typer.echo(terminal_safe(f"lifeline check: {exc}"), err=True)
        raise typer.Exit(2) from None
