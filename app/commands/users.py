"""`lifeline users`: create the first admin and manage accounts from the server (audited as cli:<os user>)."""

from __future__ import annotations

import getpass
import sys

import typer
from sqlalchemy.orm import Session

from app.commands.common import cli_actor, cli_session, fail, session_factory, settings_or_exit
from app.models.account import User
from app.models.base import utcnow
from app.services.accounts import totp
from app.services.accounts.breakglass import set_break_glass
from app.services.accounts.users import (
    ROLES,
    AccountError,
    create_user,
    get_user_by_username,
    is_demotion,
    list_users,
    reset_password,
    set_disabled,
    set_role,
)

app = typer.Typer(help="Manage dashboard accounts.", no_args_is_help=True)


def read_new_password(password_stdin: bool) -> str:
    """From stdin (one line) or prompted twice without echo."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            typer.echo("lifeline: --password-stdin given but stdin was empty", err=True)
            raise typer.Exit(2)
        return password
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Repeat password: ")
    if first != second:
        typer.echo("lifeline: the passwords differ", err=True)
        raise typer.Exit(2)
    return first


def _role(value: str) -> str:
    if value not in ROLES:
        raise typer.BadParameter(f"choose one of {', '.join(ROLES)}")
    return value


def user_or_exit(session: Session, username: str) -> User:
    """The account named `username`, or exit 1 saying there is none."""
    user = get_user_by_username(session, username)
    if user is None:
        fail(f"no account named {username!r} (see `lifeline users list`)")
    return user


@app.command("create")
def create(
    username: str = typer.Option(..., "--username", help="Account name."),
    role: str = typer.Option("viewer", "--role", callback=_role, help="viewer, responder or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create an account (the first admin: `--role admin`)."""
    password = read_new_password(password_stdin)
    with cli_session(refusals=(AccountError,)) as session:
        user = create_user(
            session,
            username=username,
            password=password,
            role=role,
            actor=cli_actor(),
        )
        typer.echo(f"created {user.username} ({user.role})")


@app.command("list")
def list_command() -> None:
    """List accounts: name, role, state, last sign-in."""
    with cli_session(refusals=(AccountError,)) as session:
        users = list_users(session)
        if not users:
            typer.echo("no accounts; create one with: lifeline users create --username NAME --role admin")
            return
        typer.echo(f"{'USERNAME':<24} {'ROLE':<10} {'STATE':<9} LAST SIGN-IN")
        for user in users:
            last = user.last_sign_in_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_sign_in_at else "never"
            state = "disabled" if user.disabled else "active"
            typer.echo(f"{user.username:<24} {user.role:<10} {state:<9} {last}")


@app.command("set-role")
def set_role_command(
    username: str = typer.Argument(..., help="Account name."),
    role: str = typer.Argument(..., callback=_role, help="viewer, responder or admin."),
    keep_credentials: bool = typer.Option(
        False, "--keep-credentials", help="On a demotion, leave their active credentials in force."
    ),
) -> None:
    """Change an account's role; a demotion revokes the credentials the account issued."""
    with cli_session(refusals=(AccountError,)) as session:
        user = user_or_exit(session, username)
        before = user.role
        set_role(session, user, role=role, actor=cli_actor())
        user_id, demoted = user.id, is_demotion(before, role)
        typer.echo(f"{user.username} is now {role}")
    if demoted and not keep_credentials:
        _offboard(user_id, f"role now {role}")


def _offboard(user_id: int, reason: str) -> None:
    from app.services.credentials import runs

    settings = settings_or_exit()
    with session_factory(settings) as factory:
        results = runs.revoke_for_user(settings, factory, user_id, cli_actor(), reason=reason)
    for credential_id, outcome in results:
        typer.echo(f"credential #{credential_id}: {outcome}")
    failed = [r for r in results if r[1] != "revoked"]
    typer.echo(f"{len(results) - len(failed)} of {len(results)} active credential(s) revoked")
    if failed:
        raise typer.Exit(1)


@app.command("disable")
def disable(
    username: str = typer.Argument(..., help="Account name."),
    keep_credentials: bool = typer.Option(
        False, "--keep-credentials", help="Leave the cluster credentials the account issued in force."
    ),
) -> None:
    """Disable an account: its sessions end, its tokens stop working and its credentials are revoked."""
    with cli_session(refusals=(AccountError,)) as session:
        user = user_or_exit(session, username)
        set_disabled(session, user, disabled=True, actor=cli_actor())
        user_id = user.id
        typer.echo(f"{user.username} disabled")
    if not keep_credentials:
        _offboard(user_id, "account disabled")


@app.command("enable")
def enable(username: str = typer.Argument(..., help="Account name.")) -> None:
    """Re-enable a disabled account."""
    with cli_session(refusals=(AccountError,)) as session:
        user = user_or_exit(session, username)
        set_disabled(session, user, disabled=False, actor=cli_actor())
        typer.echo(f"{user.username} enabled")


@app.command("reset-password")
def reset_password_command(
    username: str = typer.Argument(..., help="Account name."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Set a new password (every session of the account ends)."""
    password = read_new_password(password_stdin)
    with cli_session(refusals=(AccountError,)) as session:
        user = user_or_exit(session, username)
        reset_password(session, user, new_password=password, actor=cli_actor())
        typer.echo(f"password of {user.username} reset; their sessions ended")


@app.command("break-glass")
def break_glass_command(
    username: str = typer.Argument(..., help="Account name (a local account)."),
    off: bool = typer.Option(False, "--off", help="Remove the mark instead."),
) -> None:
    """Mark a local account break-glass: it may sign in with its password while SSO is on."""
    with cli_session(refusals=(AccountError,)) as session:
        user = user_or_exit(session, username)
        set_break_glass(session, user, not off, actor=cli_actor(), now=utcnow())
        typer.echo(f"{user.username} is {'no longer ' if off else ''}break-glass")


@app.command("reset-totp")
def reset_totp_command(username: str = typer.Argument(..., help="Account name.")) -> None:
    """Remove an account's authenticator app (lost phone); they set up a new one at their next sign-in."""
    with cli_session(refusals=(AccountError,)) as session:
        user = user_or_exit(session, username)
        totp.reset_by_admin(session, user, actor=cli_actor(), now=utcnow())
        typer.echo(f"TOTP of {user.username} reset")
