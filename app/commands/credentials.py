"""`lifeline credentials` subcommands: the data key, the list, and exporting a bundle offline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from app.commands.common import cli_actor, cli_session, fail, settings_or_exit
from app.integrations.vault import DataKeyError, Vault, generate_data_key, load_data_key
from app.settings import Settings

app = typer.Typer(help="Emergency-access credentials and their data key.", no_args_is_help=True)


@app.command("gen-data-key")
def gen_data_key(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the key to this file (mode 0600) for LIFELINE_DATA_KEY_FILE."
        ),
    ] = None,
) -> None:
    """Generate a random AES-256 data key for encrypting private keys at rest."""
    key = generate_data_key()
    if output is None:
        typer.echo(key)
        return
    if output.exists():
        typer.echo(f"lifeline: {output} exists; refusing to overwrite a data key", err=True)
        raise typer.Exit(1)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    typer.echo(f"wrote {output}; set LIFELINE_DATA_KEY_FILE={output.resolve()} and back it up offline")


@app.command("check-data-key")
def check_data_key() -> None:
    """Check that the configured data key loads, and print its id (not the key)."""
    settings = _settings()
    try:
        key = load_data_key(
            settings.data_key.get_secret_value() if settings.data_key else None, settings.data_key_file
        )
    except DataKeyError as exc:
        typer.echo(f"lifeline: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"data key ok (id {Vault(key).key_id})")


@app.command("rotate-data-key")
def rotate_data_key_command(
    new_key_file: Annotated[
        Path,
        typer.Option(
            "--new-key-file",
            help="File holding the new key (make it with `gen-data-key -o`; mode 0600).",
        ),
    ],
) -> None:
    """Re-seal every stored secret (server-held keys, channel settings, TOTP secrets) under a new data
    key, all or nothing, audited. Then point LIFELINE_DATA_KEY_FILE at the new file and restart."""
    from app.services.rotation import rotate_data_key

    settings = _settings()
    try:
        old = Vault(
            load_data_key(
                settings.data_key.get_secret_value() if settings.data_key else None, settings.data_key_file
            )
        )
        new = Vault(load_data_key(None, new_key_file))
    except DataKeyError as exc:
        fail(str(exc))
    with cli_session(settings) as session:
        result = rotate_data_key(session, old, new, cli_actor())
    typer.echo(
        f"re-sealed {result.credentials} private key(s), {result.channels} channel setting(s) and "
        f"{result.totp_secrets} TOTP secret(s): data key {result.old_key_id} -> {result.new_key_id}.\n"
        f"Now set LIFELINE_DATA_KEY_FILE={new_key_file.resolve()} (and clear LIFELINE_DATA_KEY) on every "
        "replica and restart; keep the old key offline until then."
    )


@app.command("list")
def list_command() -> None:
    """List credentials: id, cluster, identity, role, status, expiry."""
    from app.services.credentials.queries import list_credentials

    with cli_session() as session:
        rows = list_credentials(session, include_history=True)
        if not rows:
            typer.echo("no credentials")
        for row in rows:
            expiry = row.not_after.strftime("%Y-%m-%d %H:%M UTC") if row.not_after else "-"
            typer.echo(
                f"{row.id:>5}  {row.cluster.name:<24} {row.username:<28} {row.cluster_role:<14} "
                f"{row.status:<9} {expiry}"
            )


@app.command("export")
def export_command(
    credential_id: Annotated[int, typer.Argument(help="Credential id (see `lifeline credentials list`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (mode 0600).")],
    bundle: Annotated[
        bool, typer.Option("--bundle/--kubeconfig", help="Zip bundle or bare kubeconfig.")
    ] = True,
) -> None:
    """Write a credential's bundle or kubeconfig from the database alone (when the web UI is down).

    Needs the data key; audited like a download, as `cli:<OS user>` with `via: cli`.
    """
    from app.services.credentials.access import Refused, download_credential
    from app.services.credentials.keys import vault_from_settings

    settings = _settings()
    if output.exists():
        fail(f"{output} exists; refusing to overwrite")
    with cli_session(settings) as session:
        vault = vault_from_settings(settings)
        result = download_credential(
            session, credential_id, cli_actor(), vault, "bundle" if bundle else "kubeconfig"
        )
    if isinstance(result, Refused):
        fail(str(result.error))
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(result.content)
    typer.echo(f"wrote {output} ({result.filename})")


def _settings() -> Settings:
    return settings_or_exit()
