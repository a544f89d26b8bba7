"""What every CLI command shares: the client built from global options, and output helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


@dataclass
class Options:
    url: str | None = None
    token: str | None = None
    project: str | None = None
    json: bool = False


def client(ctx: typer.Context) -> Any:
    from modelyard.sdk.client import Client

    opts: Options = ctx.find_root().obj or Options()
    return Client(opts.url, opts.token, opts.project)


def wants_json(ctx: typer.Context) -> bool:
    opts: Options = ctx.find_root().obj or Options()
    return opts.json


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> Table:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(_cell(r.get(c)) for c in columns))
    return t


def show(ctx: typer.Context, data: Any, columns: list[str] | None = None, title: str | None = None) -> None:
    """Print `data` as JSON with --json, else as a table (lists) or key/value pairs."""
    if wants_json(ctx):
        console.print_json(json.dumps(data, default=str))
    elif isinstance(data, list) and columns:
        console.print(table(data, columns, title))
    elif isinstance(data, dict):
        t = Table(show_header=False, title=title)
        t.add_column("field", style="bold")
        t.add_column("value")
        for k, v in data.items():
            t.add_row(k, _cell(v))
        console.print(t)
    else:
        console.print(data)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)[:80]
    return str(v)
