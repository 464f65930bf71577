"""`lifeline users` subcommands."""

import typer

app = typer.Typer(help="users commands", no_args_is_help=True)
