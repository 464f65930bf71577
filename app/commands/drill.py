"""`lifeline drill start|status|end|report`: disconnect drills from the server (audited as cli:<os user>)."""

from __future__ import annotations

import json

import typer

from app.commands.common import cli_actor, cli_session, fail, session_factory, settings_or_exit
from app.models.base import utcnow
from app.services.drills import lifecycle, report, runner
from app.services.errors import ServiceError

app = typer.Typer(help="Disconnect drills: start, follow, end and report.", no_args_is_help=True)


@app.command("start")
def start(
    outpost: str = typer.Option(..., "--outpost", help="Outpost ID, e.g. op-0123456789abcdef0."),
    title: str = typer.Option("Disconnect drill", "--title", help="What is rehearsed."),
    duration: int = typer.Option(
        60, "--duration", min=1, max=1440, help="Minutes; it ends on its own after."
    ),
    ticket: str | None = typer.Option(None, "--ticket", help="Change or ticket reference."),
    participants: str = typer.Option("", "--participants", help="People taking part, comma-separated."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run the first round of checks now."),
) -> None:
    """Start a drill now on the Outpost (the service link must be cut: Lifeline checks that it is)."""
    settings = settings_or_exit()
    actor, now = cli_actor(), utcnow()
    with cli_session(settings) as session:
        drill = lifecycle.plan_drill(
            session,
            outpost_id=outpost,
            title=title,
            planned_start=now,
            duration_minutes=duration,
            ticket_ref=ticket,
            participants=participants.split(","),
            actor=actor,
            now=now,
        )
        lifecycle.start_drill(session, drill, actor, now)
        drill_id = drill.id
    typer.echo(f"drill #{drill_id} running on {outpost} for {duration} min")
    if check:
        _round(settings, drill_id)
    _print_status(drill_id)


def _round(settings: object, drill_id: int) -> None:
    with session_factory(settings) as factory:  # type: ignore[arg-type]
        try:
            runner.run_round(settings, factory, drill_id, actor=cli_actor())  # type: ignore[arg-type]
        except ServiceError as exc:
            fail(str(exc))


def _print_status(drill_id: int | None) -> None:
    with cli_session() as session:
        drills = (
            [lifecycle.get_drill(session, drill_id)] if drill_id else lifecycle.list_drills(session, limit=20)
        )
        if not drills:
            typer.echo("no drills; start one with `lifeline drill start --outpost op-...`")
            return
        for drill in drills:
            outcome = f", outcome {drill.outcome}" if drill.outcome else ""
            typer.echo(f"#{drill.id} {drill.state}{outcome}: {drill.title} on {drill.outpost.name}")
            if drill_id:
                for c in drill.checks:
                    typer.echo(f"  {c.status:<8} {c.item:<18} {c.subject}: {c.summary}")


@app.command("status")
def status(
    drill_id: int | None = typer.Argument(None, help="A drill number; none lists the latest drills."),
    check: bool = typer.Option(False, "--check", help="Run a round of checks first."),
) -> None:
    """Show a drill's checks (or list the latest drills)."""
    if check and drill_id:
        _round(settings_or_exit(), drill_id)
    _print_status(drill_id)


@app.command("end")
def end(
    drill_id: int = typer.Argument(..., help="The running drill."),
    abort: str | None = typer.Option(None, "--abort", help="Abort instead, with this reason."),
) -> None:
    """End (or abort) a drill: the outcome is decided and a passed drill attests readiness."""
    settings = settings_or_exit()
    with cli_session(settings) as session:
        drill = lifecycle.get_drill(session, drill_id)
        if abort is not None:
            lifecycle.abort_drill(
                session, drill, cli_actor(), utcnow(), reason=abort, valid_days=settings.drill_valid_days
            )
        else:
            lifecycle.end_drill(session, drill, cli_actor(), utcnow(), valid_days=settings.drill_valid_days)
        typer.echo(f"drill #{drill.id} {drill.state}: {drill.outcome}")
        for item in drill.follow_ups:
            typer.echo(f"  follow-up: {item}")


@app.command("report")
def report_command(
    drill_id: int = typer.Argument(..., help="The drill."),
    fmt: str = typer.Option("markdown", "--format", help="markdown or json"),
) -> None:
    """Print the drill's report (audited as a download)."""
    if fmt not in ("markdown", "json"):
        fail("--format must be markdown or json")
    from app.services.audit import record_audit

    with cli_session() as session:
        drill = lifecycle.get_drill(session, drill_id)
        data = report.report(session, drill, utcnow())
        record_audit(
            session,
            actor=cli_actor(),
            action="drill.report",
            target=f"drill:{drill.id}",
            details={"format": fmt, "via": "cli"},
        )
        typer.echo(json.dumps(data, indent=2) if fmt == "json" else report.markdown(data))
