"""`lifeline tokens`: personal API tokens from the server (audited as cli:<os user>)."""

from __future__ import annotations

import typer

from app.commands.common import cli_actor, cli_session, fail
from app.commands.users import user_or_exit
from app.services.accounts.tokens import create_token, find_tokens, list_tokens, revoke_token, token_state
from app.services.accounts.users import AccountError

app = typer.Typer(help="Manage personal API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="Owner; the token acts with this account's role."),
    name: str = typer.Option("cli", "--name", help="What will use the token."),
    expires_in: int | None = typer.Option(
        None, "--expires-in", min=1, help="Days until it expires (default never)."
    ),
) -> None:
    """Create a token and print it once (it is stored only as a hash)."""
    with cli_session(refusals=(AccountError,)) as session:
        owner = user_or_exit(session, user)
        raw, token = create_token(session, owner, name=name, expires_in_days=expires_in, actor=cli_actor())
        expiry = token.expires_at.strftime("%Y-%m-%d %H:%M UTC") if token.expires_at else "never"
        typer.echo(f"token {token.prefix}… for {owner.username} ({owner.role}), expires {expiry}", err=True)
        typer.echo("copy it now, it is not shown again:", err=True)
        typer.echo(raw)


@app.command("list")
def list_command(user: str | None = typer.Option(None, "--user", help="Only this owner's tokens.")) -> None:
    """List tokens: id, prefix, owner, name, state, last used."""
    with cli_session(refusals=(AccountError,)) as session:
        user_id = user_or_exit(session, user).id if user else None
        tokens = list_tokens(session, user_id=user_id)
        if not tokens:
            typer.echo("no tokens")
            return
        typer.echo(f"{'ID':>5} {'PREFIX':<14} {'OWNER':<20} {'NAME':<20} {'STATE':<8} LAST USED")
        for t in tokens:
            last = t.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if t.last_used_at else "never"
            typer.echo(
                f"{t.id:>5} {t.prefix:<14} {t.user.username:<20} {t.name[:20]:<20} {token_state(t):<8} {last}"
            )


@app.command("revoke")
def revoke(ref: str = typer.Argument(..., help="Token id or prefix (as shown by `tokens list`).")) -> None:
    """Revoke a token at once."""
    with cli_session(refusals=(AccountError,)) as session:
        matches = find_tokens(session, ref.rstrip("…"))
        if not matches:
            fail(f"no token matches {ref!r}")
        if len(matches) > 1:
            fail(f"{ref!r} matches {len(matches)} tokens; give the id")
        token = matches[0]
        revoke_token(session, token, actor=cli_actor())
        typer.echo(f"revoked {token.prefix}… ({token.name}) of {token.user.username}")
