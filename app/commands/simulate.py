"""`lifeline simulate` subcommands."""

import typer

app = typer.Typer(help="simulate commands", no_args_is_help=True)
