"""What every `lifeline` command shares: settings or a clean exit, one transaction, the CLI actor.

A command opens its database work with `cli_session()` (commit on success, roll back on error, like
a job's `session_scope`), records what it does as `cli_actor()`, and reports a refusal with `fail`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import NoReturn

import typer
from sqlalchemy.orm import Session, sessionmaker

from app.db import create_db_engine, make_session_factory, session_scope
from app.services.audit import Actor, ClientInfo
from app.services.errors import ServiceError
from app.settings import Settings, SettingsError, load_settings

CLI_CLIENT = ClientInfo(address="local", user_agent="lifeline-cli")


def settings_or_exit() -> Settings:
    """Load settings; on a bad `LIFELINE_*` value print which one and exit with status 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"lifeline: {exc}", err=True)
        raise typer.Exit(2) from None


def cli_actor() -> Actor:
    """Who a command acts as in the audit trail: `cli:<operating-system user>`, from the local client."""
    return replace(Actor.cli(), client=CLI_CLIENT)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `lifeline: message` on stderr and exit with `code`."""
    typer.echo(f"lifeline: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def session_factory(settings: Settings | None = None) -> Iterator[sessionmaker[Session]]:
    """A session factory on LIFELINE_DATABASE_URL for the length of a command (for jobs run once)."""
    engine = create_db_engine((settings or settings_or_exit()).database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@contextmanager
def cli_session(
    settings: Settings | None = None, *, refusals: tuple[type[Exception], ...] = ()
) -> Iterator[Session]:
    """One committed transaction; a refusal (a ServiceError or one of `refusals`) prints and exits 1."""
    caught: tuple[type[Exception], ...] = (ServiceError, *refusals)
    with session_factory(settings) as factory:
        try:
            with session_scope(factory) as session:
                yield session
        except caught as exc:
            fail(str(exc))


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Text for a terminal: control characters (escape sequences, bells, C1) shown as \\xNN, so a
    name taken from a manifest cannot move the cursor, recolour or retitle the operator's terminal."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
