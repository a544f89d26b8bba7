"""`modelyard run` commands: list, show and compare runs."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from modelyard.cli._common import client, console, show, wants_json

app = typer.Typer(help="runs: list (with the search filter), show, compare", no_args_is_help=True)

_COLUMNS = ["id", "experiment", "status", "params", "metrics", "created_at"]


@app.command("list")
def list_runs(
    ctx: typer.Context,
    filter: str = typer.Option(None, "--filter", "-f",
                               help="e.g. \"metrics.acc > 0.9 and params.lr = 0.01\""),
    order_by: list[str] = typer.Option(None, "--order-by", help="e.g. 'metrics.acc DESC'"),
    experiment: str = typer.Option(None, "--experiment", "-e"),
    limit: int = typer.Option(50, "--limit"),
) -> None:
    """Runs of the project, newest first, or those matching --filter."""
    out = client(ctx).registry.search_runs(filter, order_by or None, limit=limit,
                                           experiment=experiment)
    rows = out["runs"] if isinstance(out, dict) else out
    show(ctx, rows, _COLUMNS, title="runs")


@app.command("show")
def show_run(ctx: typer.Context, run_id: str) -> None:
    """One run: params, tags, latest metrics."""
    show(ctx, client(ctx).registry.get_run(run_id), title=run_id)


@app.command("compare")
def compare(ctx: typer.Context, run_ids: list[str] = typer.Argument(..., help="2+ run ids")) -> None:
    """Params side by side (differing ones marked *) and last/min/max of each metric."""
    out = client(ctx).registry.compare_runs(run_ids)
    if wants_json(ctx):
        show(ctx, out)
        return
    ids = [r["id"] for r in out["runs"]]
    params = Table(title="params (* differs)")
    for col in ["param", *ids]:
        params.add_column(col)
    for key, values in out["params"].items():
        mark = "*" if key in out["differing_params"] else ""
        params.add_row(f"{mark}{key}", *[_cell(v) for v in values],
                       style="bold yellow" if mark else None)
    metrics = Table(title="metrics (last / min / max)")
    for col in ["metric", *ids]:
        metrics.add_column(col)
    for key, summaries in out["metrics"].items():
        metrics.add_row(key, *["-" if s is None else
                               f"{s['last']:.4g} / {s['min']:.4g} / {s['max']:.4g}"
                               for s in summaries])
    console.print(params)
    console.print(metrics)


def _cell(v: Any) -> str:
    return "-" if v is None else str(v)
