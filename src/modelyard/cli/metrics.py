"""`modelyard metrics` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="metrics", no_args_is_help=True)
