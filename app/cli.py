"""The `lifeline` command: serve, scheduler, migrate, poll-once, and one group per feature."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import typer

from app.commands import check, credentials, fleet, tokens, users
from app.settings import Settings, SettingsError, load_settings
from lifeline_demo import cli as demo
from lifeline_simulator import cli as simulate

cli = typer.Typer(
    name="lifeline",
    help="Outpost Lifeline: connectivity, emergency access and readiness for EKS local clusters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.add_typer(fleet.app, name="fleet", help="List, add and remove Outposts and clusters.")
cli.add_typer(users.app, name="users", help="Manage dashboard accounts.")
cli.add_typer(tokens.app, name="tokens", help="Manage personal API tokens.")
cli.add_typer(simulate.app, name="simulate", help="Run simulated infrastructure (Kubernetes API).")
cli.add_typer(check.app, name="check", help="Evaluate readiness checks against a manifest dump.")
cli.add_typer(demo.app, name="demo", help="Start the demo fleet and the dashboard wired to it.")
cli.add_typer(credentials.app, name="credentials", help="Emergency-access credentials and the data key.")


def settings_or_exit() -> Settings:
    """Load settings; on a bad `LIFELINE_*` value print which one and exit with status 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"lifeline: {exc}", err=True)
        raise typer.Exit(2) from None


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default LIFELINE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default LIFELINE_PORT)."),
    scheduler: bool = typer.Option(
        True, "--scheduler/--no-scheduler", help="Run the poll scheduler in this process (one only)."
    ),
) -> None:
    """Start the web dashboard (with the scheduler embedded unless --no-scheduler)."""
    import uvicorn

    from app.main import create_app

    _configure_logging()
    settings = settings_or_exit()
    app = create_app(settings, start_scheduler=scheduler)
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level="info")


@cli.command("scheduler")
def scheduler_command() -> None:
    """Run only the scheduler (for deployments with several web replicas)."""
    from app.db import create_db_engine, make_session_factory
    from app.jobs.scheduler import build_scheduler

    _configure_logging()
    settings = settings_or_exit()
    engine = create_db_engine(settings.database_url)
    sched = build_scheduler(settings, make_session_factory(engine))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sched.start()
    typer.echo(f"scheduler running, polling every {settings.poll_interval_seconds} s; Ctrl-C stops")
    stop.wait()
    sched.shutdown(wait=True)
    engine.dispose()


@cli.command()
def migrate(
    revision: str = typer.Argument("head", help="Target revision (default: head)."),
    down: bool = typer.Option(False, "--down", help="Downgrade to REVISION instead of upgrading."),
) -> None:
    """Apply database migrations (or roll back with --down)."""
    from app import migrate as migrations

    settings = settings_or_exit()
    if down:
        migrations.downgrade(settings.database_url, revision)
    else:
        migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@cli.command("poll-once")
def poll_once() -> None:
    """Run one poll cycle of every job, then exit (non-zero if a job failed)."""
    from app.db import create_db_engine, make_session_factory
    from app.jobs.scheduler import run_all_once

    _configure_logging()
    settings = settings_or_exit()
    engine = create_db_engine(settings.database_url)
    failures = run_all_once(settings, make_session_factory(engine))
    engine.dispose()
    if failures:
        typer.echo("failed: " + ", ".join(failures), err=True)
        raise typer.Exit(1)


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        typer.echo(f"lifeline: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
