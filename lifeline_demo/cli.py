"""`lifeline demo`: the demo fleet (moto + three simulated local clusters) and the dashboard wired to it."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from app.settings import Settings
    from lifeline_demo.fleet import DemoFleet

app = typer.Typer(help="demo commands", invoke_without_command=True)

# moto's fake credentials (not secrets); the simulated clusters map them to kubernetes-admin.
DEMO_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
}

DEMO_USER = "demo"

PortOption = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, help="Dashboard port (default LIFELINE_PORT, else 8000)."),
]
HostOption = Annotated[str, typer.Option("--host", help="Dashboard bind address.")]


@app.callback()
def demo(ctx: typer.Context, port: PortOption = None, host: HostOption = "127.0.0.1") -> None:
    """Start the demo fleet and the dashboard wired to it (Ctrl-C stops everything)."""
    if ctx.invoked_subcommand is None:
        run_demo(port, host)


@app.command("start")
def start(port: PortOption = None, host: HostOption = "127.0.0.1") -> None:
    """Same as `lifeline demo` (what `make run` calls when no AWS is configured)."""
    run_demo(port, host)


def _database_url() -> tuple[str, str]:
    """LIFELINE_DATABASE_URL when set (so `lifeline users` works on a running demo), else a fresh SQLite."""
    configured = os.environ.get("LIFELINE_DATABASE_URL")
    if configured:
        return configured, "LIFELINE_DATABASE_URL"
    folder = Path(tempfile.mkdtemp(prefix="lifeline-demo-"))
    return f"sqlite:///{folder / 'demo.db'}", "a fresh SQLite file"


def _register_fleet(settings: Settings, session_factory: sessionmaker[Session], fleet: DemoFleet) -> None:
    """Put the demo Outposts in the fleet with the history the first poll's backfill would store."""
    from app.db import session_scope
    from app.integrations.cloudwatch import Datapoint
    from app.services.audit import Actor, Via
    from app.services.connectivity import status
    from app.services.fleet import inventory

    recent = fleet.started_at - dt.timedelta(hours=1)
    with session_scope(session_factory) as session:
        history: dict[int, list[Datapoint]] = {}
        for outpost in fleet.outposts:
            if inventory.get_outpost_or_none(session, outpost.outpost_id) is not None:
                continue
            row = inventory.add_outpost(
                session,
                outpost_id=outpost.outpost_id,
                name=outpost.name,
                region=outpost.region,
                actor=Actor(name="lifeline-demo", role="admin", via=Via.system),
            )
            # The day of history older than an hour is preloaded as the first poll's backfill would
            # store it (reading a day of minutes back from moto takes ~10 s); the last hour and every
            # minute after it come through the poller.
            history[row.id] = [
                Datapoint(ts, value, 60)
                for ts, value in fleet.history_points(outpost, fleet.started_at)
                if ts < recent
            ]
        status.record_samples(session, history)


class _Background:
    """Seeds EKS/EC2 in moto, then starts the scheduler (its first runs discover and poll)."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], fleet: DemoFleet) -> None:
        self.settings, self.session_factory, self.fleet = settings, session_factory, fleet
        self.scheduler: Any = None
        self.thread = threading.Thread(target=self._run, name="demo-seed", daemon=True)
        self._lock = threading.Lock()
        self._stopped = False

    def _run(self) -> None:
        from app.jobs.scheduler import build_scheduler

        log = logging.getLogger("lifeline.demo")
        try:
            self.fleet.seed_clusters()
        except Exception:
            log.exception("demo: seeding the EKS clusters in moto failed; discovery will find none")
        with self._lock:
            if self._stopped:
                return
            self.scheduler = build_scheduler(self.settings, self.session_factory)
            self.scheduler.start()
        log.info("demo: clusters seeded, scheduler started (discovery and the first poll run now)")

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
        self.thread.join(timeout=30)


def _demo_login(settings: Settings, session_factory: sessionmaker[Session]) -> str:
    """The demo admin with a fresh random password on every start (created the first time); return
    the sign-in line. A demo kept in LIFELINE_DATABASE_URL thus always prints a sign-in that works."""
    import secrets

    from app.db import session_scope
    from app.services.accounts import users as accounts
    from app.services.audit import Actor, Via

    password = secrets.token_urlsafe(12)
    actor = Actor(name="lifeline-demo", role="admin", via=Via.system)
    with session_scope(session_factory) as session:
        existing = accounts.get_user_by_username(session, DEMO_USER)
        if existing is None:
            accounts.create_user(session, username=DEMO_USER, password=password, role="admin", actor=actor)
        else:
            accounts.reset_password(session, existing, new_password=password, actor=actor)
    return f"{DEMO_USER} / {password}"


def _database_line(url: str, where: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return f"{Path(parsed.database).resolve()} ({where})"
    return f"{parsed.render_as_string(hide_password=True)} ({where})"


def _data_key_line(settings: Settings, ephemeral: bool) -> str:
    """Where the data key comes from and its id (never the key), or why server-held keys are off."""
    from app.integrations.vault import DataKeyError
    from app.services.credentials.keys import vault_from_settings

    try:
        vault = vault_from_settings(settings)
    except DataKeyError as exc:
        return f"unusable ({exc}); Lifeline will not generate keys, uploading a CSR still works"
    if vault is None:
        return (
            "none: server-held keys are off because LIFELINE_DATABASE_URL is set without "
            "LIFELINE_DATA_KEY or LIFELINE_DATA_KEY_FILE (uploading a CSR still works)"
        )
    if ephemeral:
        return f"a throw-away key for this run (id {vault.key_id}, in memory only, gone on Ctrl-C)"
    source = "LIFELINE_DATA_KEY_FILE" if settings.data_key_file else "LIFELINE_DATA_KEY"
    return f"from {source} (id {vault.key_id})"


def run_demo(port: int | None, host: str) -> None:
    import uvicorn

    from app import migrate
    from app.main import create_app
    from app.settings import SettingsError, load_settings
    from lifeline_demo import web
    from lifeline_demo.fleet import DEMO_REGIONS, DemoFleet

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    # moto accepts any credentials; the simulated clusters map these to kubernetes-admin. Set them
    # for this process only, so real credentials in the environment never reach the demo.
    os.environ.update(DEMO_AWS_ENVIRONMENT)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    database_url, where = _database_url()
    typer.echo("Starting the demo fleet (moto on loopback, three simulated local clusters)...")
    fleet = DemoFleet().start(seed_clusters=False)
    background: _Background | None = None
    # A throw-away demo database gets a throw-away data key, so visitors can issue server-held
    # keys; a demo kept in LIFELINE_DATABASE_URL uses the configured key (or none) like production.
    ephemeral_key: dict[str, Any] = {}
    if not any(os.environ.get(f"LIFELINE_{n}") for n in ("DATABASE_URL", "DATA_KEY", "DATA_KEY_FILE")):
        ephemeral_key["data_key"] = base64.b64encode(os.urandom(32)).decode()
    try:
        try:
            settings = load_settings(
                **ephemeral_key,
                database_url=database_url,
                aws_endpoint_url=fleet.endpoint_url,
                aws_regions=list(DEMO_REGIONS),
                demo_mode=True,
                **({"port": port} if port else {}),  # else LIFELINE_PORT, else 8000
                host=host,
                poll_initial_backfill_hours=int(fleet.history.total_seconds() // 3600),
                # Site probes (issue 13): an open overview refreshes often enough to show a switch
                # within 15 s. The control-plane IPs are loopback addresses, so they are probed too.
                vantage=os.environ.get("LIFELINE_VANTAGE") or "demo-dashboard",
                overview_refresh_seconds=3,
            )
            settings = settings.model_copy(update={"base_url": f"http://{host}:{settings.port}"})
        except SettingsError as exc:
            typer.echo(f"lifeline demo: {exc}", err=True)
            raise typer.Exit(2) from None
        migrate.upgrade(settings.database_url)
        # The scheduler starts once the clusters are in moto (see _Background), not with the app.
        application = create_app(settings, start_scheduler=False)
        web.install(application, fleet)
        _register_fleet(settings, application.state.session_factory, fleet)
        login = _demo_login(settings, application.state.session_factory)
        background = _Background(settings, application.state.session_factory, fleet)
        background.thread.start()
        typer.echo("")
        typer.echo(f"  Dashboard:   {settings.base_url}/")
        typer.echo(f"  Sign in:     {login}   (a new password on every start)")
        typer.echo(f"  Rehearse:    {settings.base_url}/demo")
        typer.echo(f"  Database:    {_database_line(settings.database_url, where)}")
        typer.echo(f"  Data key:    {_data_key_line(settings, bool(ephemeral_key))}")
        typer.echo(f"  API docs:    {settings.base_url}/api/docs (signed in)")
        typer.echo(f"  AWS (moto):  {fleet.endpoint_url}")
        for name, sim in fleet.clusters.items():
            typer.echo(f"  Cluster:     {name} at {sim.endpoint} on {', '.join(sim.addresses)}")
        typer.echo(
            "  The endpoint names resolve inside the demo only (standing in for the Outpost's local DNS):"
        )
        typer.echo("  from a shell use a bundle's -direct-N contexts, or add its hosts lines to /etc/hosts.")
        typer.echo("  Clusters and their first readiness findings appear within a minute.")
        typer.echo("  Ctrl-C stops the dashboard and the whole demo fleet.")
        typer.echo("")
        uvicorn.run(application, host=host, port=settings.port, log_level="warning")
    finally:
        if background is not None:
            background.stop()
        fleet.stop()
        typer.echo("demo stopped")
