"""`lifeline notifications`: channels, rules, quiet periods, the event log and a standalone sender
(every change audited as cli:<os user>)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

from app.commands.common import settings_or_exit
from app.models.base import utcnow
from app.services.audit import Actor
from app.services.errors import ServiceError
from app.services.notifications import delivery, outbox, rules
from app.settings import Settings

app = typer.Typer(help="Notification channels, rules, quiet periods and the sender.", no_args_is_help=True)


def _settings() -> Settings:
    return settings_or_exit()


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    from app.db import create_db_engine, make_session_factory, session_scope

    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except ServiceError as exc:
        typer.echo(f"lifeline: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _vault(settings: Settings):  # type: ignore[no-untyped-def]
    from app.jobs.notifications import vault_from_settings

    return vault_from_settings(settings)


@app.command("add-channel")
def add_channel(
    name: str = typer.Argument(..., help="A name for the channel."),
    kind: str = typer.Option(..., "--kind", help="email, webhook, alertmanager or apprise."),
    url: str = typer.Option("", "--url", help="Webhook or Alertmanager URL, or an Apprise URL."),
    host: str = typer.Option("", "--host", help="SMTP relay host (email)."),
    port: int = typer.Option(25, "--port", help="SMTP port (email)."),
    sender: str = typer.Option("", "--from", help="From address (email)."),
    to: str = typer.Option("", "--to", help="Recipients, comma-separated (email)."),
    mode: str = typer.Option("insecure", "--mode", help="SMTP: insecure, starttls or ssl."),
    username: str = typer.Option("", "--username", help="SMTP user name."),
    secret_prompt: bool = typer.Option(
        False, "--secret", help="Prompt for the HMAC secret, SMTP password or Alertmanager bearer token."
    ),
) -> None:
    """Add a channel; its configuration is sealed with the data key and not shown again."""
    settings = _settings()
    secret = typer.prompt("secret", hide_input=True) if secret_prompt else ""
    config = {
        "url": url,
        "secret": secret,
        "host": host,
        "port": port,
        "sender": sender,
        "recipients": to,
        "mode": mode,
        "username": username,
    }
    with _session(settings) as session:
        channel = rules.create_channel(
            session, _vault(settings), name=name, kind=kind, config=config, actor=Actor.cli(), now=utcnow()
        )
        typer.echo(f"channel {channel.id} {channel.name} ({channel.kind}) -> {channel.target}")


@app.command("channels")
def channels() -> None:
    """List channels (targets only; secrets are never shown)."""
    settings = _settings()
    with _session(settings) as session:
        found = rules.list_channels(session)
        if not found:
            typer.echo("no channels; add one with `lifeline notifications add-channel`")
        for c in found:
            typer.echo(
                f"{c.id:>4} {c.name:<24} {c.kind:<13} {'enabled' if c.enabled else 'disabled':<9} {c.target}"
            )


@app.command("test")
def test_channel(channel_id: int = typer.Argument(..., help="Channel id.")) -> None:
    """Send a real test message through a channel now."""
    settings = _settings()
    with _session(settings) as session:
        channel = rules.get_channel(session, channel_id)
        ok, error = delivery.send_test(
            session,
            _vault(settings),
            channel,
            actor=Actor.cli(),
            now=utcnow(),
            dashboard_url=settings.base_url,
        )
    typer.echo("sent" if ok else f"failed: {error}")
    if not ok:
        raise typer.Exit(1)


@app.command("disable")
def disable(channel_id: int = typer.Argument(...), enable: bool = typer.Option(False, "--enable")) -> None:
    """Disable a channel (pending deliveries are cancelled), or --enable it again."""
    settings = _settings()
    with _session(settings) as session:
        channel = rules.get_channel(session, channel_id)
        rules.set_channel_enabled(session, channel, enable, actor=Actor.cli(), now=utcnow())
        typer.echo(f"channel {channel.name} {'enabled' if enable else 'disabled'}")


@app.command("add-rule")
def add_rule(
    name: str = typer.Argument(...),
    channel_id: int = typer.Option(..., "--channel", help="Channel id."),
    kinds: str = typer.Option("", "--kinds", help="Event kinds or families, comma-separated (empty: all)."),
    outposts: str = typer.Option("", "--outposts"),
    regions: str = typer.Option("", "--regions"),
    clusters: str = typer.Option("", "--clusters"),
    min_severity: str = typer.Option("info", "--min-severity", help="info, warning or critical."),
    remind: int | None = typer.Option(None, "--remind-minutes", help="Reminder interval for open alerts."),
    during_drill: str = typer.Option(
        "label", "--during-drill", help="While a drill runs: label (send, marked as a drill) or quiet."
    ),
) -> None:
    """Route events to a channel."""
    settings = _settings()
    with _session(settings) as session:
        rule = rules.create_rule(
            session,
            name=name,
            channel_id=channel_id,
            event_kinds=kinds,
            outposts=outposts,
            regions=regions,
            clusters=clusters,
            min_severity=min_severity,
            reminder_minutes=remind,
            during_drill=during_drill,
            actor=Actor.cli(),
            now=utcnow(),
        )
        typer.echo(f"rule {rule.id} {rule.name} -> channel {channel_id}")


@app.command("quiet")
def quiet(
    minutes: int = typer.Option(..., "--minutes", min=1, help="Length of the quiet period from now."),
    reason: str = typer.Option(..., "--reason"),
    outposts: str = typer.Option("", "--outposts", help="Outpost IDs (empty: the whole fleet)."),
) -> None:
    """Hold back notifications from now for a drill or maintenance (they show as suppressed)."""
    settings = _settings()
    now = utcnow()
    with _session(settings) as session:
        period = rules.create_quiet_period(
            session,
            starts_at=now,
            ends_at=now + dt.timedelta(minutes=minutes),
            reason=reason,
            outposts=outposts,
            actor=Actor.cli(),
            now=now,
        )
        typer.echo(f"quiet period {period.id} until {period.ends_at:%Y-%m-%d %H:%M} UTC")


@app.command("events")
def events(limit: int = typer.Option(20, "--limit")) -> None:
    """The latest events with each delivery's status, attempts and last error."""
    settings = _settings()
    with _session(settings) as session:
        for event in outbox.list_events(session, limit=limit):
            typer.echo(
                f"#{event.id} {event.occurred_at:%Y-%m-%d %H:%M:%S} {event.phase:<8} {event.kind} "
                f"{event.title}"
            )
            for d in event.deliveries:
                when = f" at {d.delivered_at:%H:%M:%S}" if d.delivered_at else ""
                error = f" ({d.last_error})" if d.last_error and d.status != "delivered" else ""
                typer.echo(f"    -> {d.channel.name}: {d.status}{when}, {d.attempts} attempts{error}")


@app.command("send")
def send(
    loop: bool = typer.Option(False, "--loop", help="Keep sending until stopped (SIGTERM/Ctrl-C)."),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between cycles with --loop."),
) -> None:
    """Run the sender: once, or as a standalone process with --loop."""
    from app.db import create_db_engine, make_session_factory
    from app.jobs.notifications import Sender

    settings = _settings()
    engine = create_db_engine(settings.database_url)
    sender = Sender(settings, make_session_factory(engine))
    stop = threading.Event()
    if loop:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while True:
            cycle = sender.run_once()
            if not loop:
                typer.echo(f"delivered {cycle.delivered}, failed {cycle.failed}, alert events {cycle.ticked}")
                return
            if stop.wait(interval):
                return
    finally:
        engine.dispose()
