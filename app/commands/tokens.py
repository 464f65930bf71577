"""`lifeline tokens` subcommands."""

import typer

app = typer.Typer(help="tokens commands", no_args_is_help=True)
