"""`lifeline fleet`: list, add and remove Outposts and clusters, apply a fleet file, run discovery.

Each command owns its transaction (`cli_session`); errors print the reason and exit non-zero.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from app.commands.common import cli_actor, cli_session, fail, session_factory, settings_or_exit
from app.services.fleet import inventory
from app.services.fleet.discovery import DISCOVERY_JOB, FLEET_FILE_JOB, latest_runs
from app.services.fleet.fleet_file import FleetFileError, load_fleet_file
from app.settings import Settings

app = typer.Typer(help="List, add and remove Outposts and clusters.", no_args_is_help=True)


def _transaction(settings: Settings | None = None) -> AbstractContextManager[Session]:
    """One committed transaction; a fleet error prints its reason and exits with status 1."""
    return cli_session(settings, refusals=(inventory.FleetError,))


# ---------------------------------------------------------------- list


def fleet_as_dict(session: Session) -> dict[str, Any]:
    outposts = [
        {
            "outpost_id": o.outpost_id,
            "name": o.name,
            "region": o.region,
            "account_id": o.account_id,
            "source": o.source,
            "state": o.state,
            "clusters": [c.name for c in o.clusters],
        }
        for o in inventory.list_outposts(session)
    ]
    clusters = [
        {
            "name": c.name,
            "region": c.region,
            "outpost_id": c.outpost.outpost_id if c.outpost else None,
            "source": c.source,
            "status": c.status,
            "endpoint": c.endpoint,
            "described_at": c.described_at.isoformat() if c.described_at else None,
        }
        for c in inventory.list_clusters(session)
    ]
    runs = [
        {
            "job": r.job,
            "scope": r.scope,
            "started_at": r.started_at.isoformat(),
            "outcome": r.outcome,
            "error": r.error,
        }
        for job in (FLEET_FILE_JOB, DISCOVERY_JOB)
        for r in latest_runs(session, job)
    ]
    return {"outposts": outposts, "clusters": clusters, "runs": runs}


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List every Outpost and cluster with where it came from (file, manual, discovery)."""
    with _transaction() as session:
        data = fleet_as_dict(session)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    if not data["outposts"] and not data["clusters"] and not data["runs"]:
        typer.echo(
            "The fleet is empty. Add Outposts with a fleet file (LIFELINE_FLEET_FILE, "
            "`lifeline fleet apply FILE`), by hand (`lifeline fleet add-outpost`), or let discovery "
            "find local clusters (LIFELINE_AWS_REGIONS, `lifeline fleet discover`)."
        )
        return
    typer.echo(f"Outposts ({len(data['outposts'])})")
    typer.echo(
        _table(
            ["outpost", "name", "region", "account", "source", "clusters"],
            [
                [
                    o["outpost_id"],
                    o["name"],
                    o["region"],
                    o["account_id"] or "-",
                    o["source"],
                    ", ".join(o["clusters"]) or "-",
                ]
                for o in data["outposts"]
            ],
        )
    )
    typer.echo(f"\nClusters ({len(data['clusters'])})")
    typer.echo(
        _table(
            ["cluster", "region", "outpost", "source", "status"],
            [
                [c["name"], c["region"], c["outpost_id"] or "-", c["source"], c["status"] or "-"]
                for c in data["clusters"]
            ],
        )
    )
    if data["runs"]:
        typer.echo("\nLast runs")
        for run in data["runs"]:
            line = f"{run['job']:<10} {run['scope']}: {run['outcome']} at {run['started_at']}"
            typer.echo(line + (f"\n  {run['error']}" if run["error"] else ""))


# ---------------------------------------------------------------- add / remove


@app.command("add-outpost")
def add_outpost_command(
    outpost_id: str = typer.Argument(..., help="Outpost ID: op- followed by 17 lower-case hex digits."),
    name: str = typer.Option(..., "--name", help="Display name, e.g. 'Plant 7, rack A'."),
    region: str = typer.Option(..., "--region", help="AWS region the Outpost is anchored to."),
    account: str | None = typer.Option(None, "--account", help="12-digit account that owns the Outpost."),
) -> None:
    """Add an Outpost by hand (source: manual)."""
    with _transaction() as session:
        inventory.add_outpost(
            session,
            outpost_id=outpost_id,
            name=name,
            region=region,
            account_id=account,
            actor=cli_actor(),
        )
    typer.echo(f"added Outpost {outpost_id} ({name}, {region})")


@app.command("update-outpost")
def update_outpost_command(
    outpost_id: str = typer.Argument(..., help="Outpost ID to change."),
    name: str | None = typer.Option(None, "--name", help="New display name."),
    account: str | None = typer.Option(None, "--account", help="12-digit owner account ('' clears it)."),
) -> None:
    """Rename an Outpost or set its account (discovered Outposts are named by their ID)."""
    if name is None and account is None:
        fail("nothing to change: pass --name and/or --account")
    with _transaction() as session:
        outpost = inventory.update_outpost(
            session, outpost_id, name=name, account_id=account, actor=cli_actor()
        )
        summary = f"{outpost.outpost_id}: {outpost.name}, account {outpost.account_id or '-'}"
    typer.echo(f"updated Outpost {summary}")


@app.command("remove-outpost")
def remove_outpost_command(
    outpost_id: str = typer.Argument(..., help="Outpost ID to remove."),
    force: bool = typer.Option(
        False, "--force", help="Also remove a file-managed entry (for a fleet file no longer in use)."
    ),
) -> None:
    """Remove an Outpost and its connectivity history (file-managed ones: edit the file)."""
    with _transaction() as session:
        inventory.remove_outpost(session, outpost_id, actor=cli_actor(), include_file=force)
    typer.echo(f"removed Outpost {outpost_id}")


@app.command("add-cluster")
def add_cluster_command(
    name: str = typer.Argument(..., help="EKS cluster name."),
    region: str = typer.Option(..., "--region", help="AWS region of the cluster."),
    outpost: str | None = typer.Option(None, "--outpost", help="ID of the Outpost it runs on."),
) -> None:
    """Add a local cluster by hand (source: manual)."""
    with _transaction() as session:
        inventory.add_cluster(session, name=name, region=region, outpost_id=outpost, actor=cli_actor())
    typer.echo(f"added cluster {name} in {region}" + (f" on {outpost}" if outpost else ""))


@app.command("remove-cluster")
def remove_cluster_command(
    name: str = typer.Argument(..., help="EKS cluster name."),
    region: str = typer.Option(..., "--region", help="AWS region of the cluster."),
    force: bool = typer.Option(
        False, "--force", help="Also remove a file-managed entry (for a fleet file no longer in use)."
    ),
) -> None:
    """Remove a cluster (file-managed ones: edit the file)."""
    with _transaction() as session:
        inventory.remove_cluster(session, name, region, actor=cli_actor(), include_file=force)
    typer.echo(f"removed cluster {name} in {region}")


# ---------------------------------------------------------------- fleet file


@app.command("validate")
def validate_command(
    path: Annotated[Path, typer.Argument(help="Fleet file (YAML) to check.")],
) -> None:
    """Check a fleet file without a database (for CI in the repository that holds it)."""
    try:
        fleet = load_fleet_file(path)
    except FleetFileError as exc:
        fail(f"{path} is invalid:\n{exc}")
    typer.echo(
        f"{path}: valid ({len(fleet.outposts)} Outposts, {len(fleet.clusters)} clusters, "
        f"discovery regions: {', '.join(fleet.discovery_regions) or 'none'})"
    )


@app.command("apply")
def apply_command(
    path: Annotated[Path, typer.Argument(help="Fleet file (YAML) to validate and apply.")],
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the changes; change nothing."),
) -> None:
    """Validate a fleet file and make the file-managed fleet match it (all or nothing)."""
    try:
        fleet = load_fleet_file(path)
    except FleetFileError as exc:
        fail(f"{path} rejected, nothing applied:\n{exc}")
    settings = settings_or_exit()
    with _transaction(settings) as session:
        try:
            changes = inventory.apply_fleet_file(session, fleet, actor=cli_actor())
        except FleetFileError as exc:
            fail(f"{path} rejected, nothing applied:\n{exc}")
        if dry_run:
            session.rollback()
    for change in changes.changes:
        typer.echo(str(change))
    configured = settings.fleet_file
    if not dry_run and configured is not None and configured.resolve() != path.resolve():
        typer.echo(
            f"note: LIFELINE_FLEET_FILE is {configured}; the scheduler makes the fleet match that file "
            "on its next run",
            err=True,
        )
    prefix = "dry run, nothing changed: would be " if dry_run else ""
    typer.echo(
        f"{prefix}{changes.summary()}" if changes.changes else "no changes: the fleet matches the file"
    )


# ---------------------------------------------------------------- discovery


@app.command("discover")
def discover_command(
    region: Annotated[
        list[str] | None,
        typer.Option("--region", help="Region to discover (repeatable); default: all configured regions."),
    ] = None,
) -> None:
    """Run EKS discovery once (ListClusters + DescribeCluster) and record what it found."""
    from app.jobs.fleet import poll_discovery
    from app.services.fleet.discovery import configured_regions

    settings = settings_or_exit()
    regions = list(region or [])
    if not regions:
        regions, file_error = configured_regions(settings.fleet_file, settings.aws_regions)
        if file_error:
            fail(f"{settings.fleet_file} rejected:\n{file_error}")
    if not regions:
        fail(
            "no regions to discover: pass --region, set LIFELINE_AWS_REGIONS, "
            "or list them under `discovery: regions:` in the fleet file"
        )
    with session_factory(settings) as factory:
        report = poll_discovery(settings, factory, regions=regions, apply_file=False)
    for change in report.changes.changes:
        typer.echo(str(change))
    for name, error in report.regions.items():
        typer.echo(f"{name}: {'failed: ' + error if error else 'ok'}", err=bool(error))
    typer.echo(report.changes.summary())
    if report.errors:
        raise typer.Exit(1)
