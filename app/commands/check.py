"""`lifeline check` subcommands."""

import typer

app = typer.Typer(help="check commands", no_args_is_help=True)
