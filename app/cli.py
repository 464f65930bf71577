"""The `lifeline` command: serve, scheduler, migrate, poll-once, and one group per feature.

`simulate` and `demo` live outside the production package, each with its own extra; they are
imported only when invoked, so a production install (`pip install .`) runs everything else and
says which extra to install when one of them is asked for.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading

import typer

from app.commands import check, credentials, drill, fleet, notifications, tokens, users
from app.commands.common import settings_or_exit
from app.settings import SettingsError

__all__ = ["cli", "main", "settings_or_exit"]


cli = typer.Typer(
    name="lifeline",
    help="Outpost Lifeline: connectivity, emergency access and readiness for EKS local clusters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.add_typer(fleet.app, name="fleet", help="List, add and remove Outposts and clusters.")
cli.add_typer(users.app, name="users", help="Manage dashboard accounts.")
cli.add_typer(tokens.app, name="tokens", help="Manage personal API tokens.")
cli.add_typer(check.app, name="check", help="Evaluate readiness checks against a manifest dump.")
cli.add_typer(credentials.app, name="credentials", help="Emergency-access credentials and the data key.")
cli.add_typer(notifications.app, name="notifications", help="Notification channels, rules and the sender.")
cli.add_typer(drill.app, name="drill", help="Disconnect drills: start, status, end, report.")


def optional_group(name: str, *, module: str, extra: str, needs: tuple[str, ...], summary: str) -> None:
    """Add `lifeline NAME`, a group shipped in an extra, imported only when it is invoked.

    `needs` are the modules the extra installs, tried first (they fail even when ours are cached);
    when one is missing the command says which extra to install and exits with status 2.
    """

    @cli.command(
        name,
        help=summary,
        add_help_option=False,  # `--help` goes to the group itself
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def run(ctx: typer.Context) -> None:
        try:
            for dependency in (*needs, module):
                importlib.import_module(dependency)
        except ImportError as exc:
            typer.echo(
                f"lifeline {name} needs the '{extra}' extra ({exc}); install it with\n"
                f"  pip install 'outpost-lifeline[{extra}]'   (in a checkout: pip install -e '.[{extra}]')",
                err=True,
            )
            raise typer.Exit(2) from None
        # Mounted as `add_typer` would mount it, so a group of one command keeps its subcommand name.
        mount = typer.Typer(pretty_exceptions_enable=False)
        mount.add_typer(importlib.import_module(module).app, name=name, help=summary)
        parent = ctx.parent.command_path if ctx.parent is not None else "lifeline"
        typer.main.get_command(mount).main(args=[name, *ctx.args], prog_name=parent)


optional_group(
    "simulate",
    module="lifeline_simulator.cli",
    extra="simulator",
    needs=("OpenSSL", "kubernetes_validate"),
    summary="Run simulated infrastructure (Kubernetes API).",
)
optional_group(
    "demo",
    module="lifeline_demo.cli",
    extra="demo",
    needs=("OpenSSL", "kubernetes_validate", "moto", "moto.server"),
    summary="Start the demo fleet and the dashboard wired to it.",
)


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

    from app.jobs.leader import SchedulerRefused, SqliteLock
    from app.main import create_app

    _configure_logging()
    settings = settings_or_exit()
    if scheduler:
        # Refuse before binding the port (the app's start-up enforces it again).
        try:
            probe = SqliteLock(settings.database_url) if settings.database_url.startswith("sqlite") else None
            if probe is not None:
                probe.acquire()
                probe.release()
        except SchedulerRefused as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    app = create_app(settings, start_scheduler=scheduler)
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from any local client;
    # Lifeline believes it only from LIFELINE_TRUSTED_PROXIES (app.web.security.client_info).
    uvicorn.run(
        app, host=host or settings.host, port=port or settings.port, log_level="info", proxy_headers=False
    )


@cli.command("scheduler")
def scheduler_command() -> None:
    """Run only the scheduler (for deployments with several web replicas).

    On PostgreSQL any number may run: they elect one leader and the others stand by. On SQLite a
    second scheduler on the same database file refuses to start."""
    from app.db import create_db_engine, make_session_factory
    from app.jobs.leader import SchedulerRefused
    from app.jobs.scheduler import LeaderScheduler

    _configure_logging()
    settings = settings_or_exit()
    engine = create_db_engine(settings.database_url)
    sched = LeaderScheduler(settings, make_session_factory(engine))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        sched.start()
    except SchedulerRefused as exc:
        engine.dispose()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"scheduler started ({sched.elector.mechanism}), polling every {settings.poll_interval_seconds} s "
        "while it leads; Ctrl-C stops"
    )
    stop.wait()
    sched.shutdown()
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
