"""`lifeline credentials` subcommands: the data key, and checking it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from app.integrations.vault import DataKeyError, Vault, generate_data_key, load_data_key

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
    from app.cli import settings_or_exit

    settings = settings_or_exit()
    try:
        key = load_data_key(
            settings.data_key.get_secret_value() if settings.data_key else None, settings.data_key_file
        )
    except DataKeyError as exc:
        typer.echo(f"lifeline: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"data key ok (id {Vault(key).key_id})")
