"""`lifeline fleet` subcommands."""

import typer

app = typer.Typer(help="fleet commands", no_args_is_help=True)
