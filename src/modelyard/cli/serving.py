"""`modelyard serving` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="serving", no_args_is_help=True)
