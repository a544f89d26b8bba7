"""`modelyard metrics` commands."""

from __future__ import annotations

from datetime import timedelta

import typer

from modelyard.cli._common import client, console, show, wants_json
from modelyard.core.ids import utcnow

app = typer.Typer(help="Prediction metrics of deployed models.", no_args_is_help=True)


@app.command("query")
def query(
    ctx: typer.Context,
    metric: str = typer.Argument(help="count, rate, latency_mean, latency_p50, latency_p95, "
                                      "latency_p99, error_rate or accuracy"),
    since: str = typer.Option("1h", help="window ending now: e.g. 30m, 1h, 2d"),
    step: float = typer.Option(60, help="step in seconds"),
    group_by: str = typer.Option(None, help="deployment, model or version"),
    deployment: str = typer.Option(None, help="only this deployment"),
) -> None:
    """Print one row per step and one column per group."""
    end = utcnow()
    start = end - _duration(since)
    out = client(ctx).metrics.query(metric, start, end, step, group_by, deployment)
    if wants_json(ctx):
        show(ctx, out)
        return
    groups = [",".join(f"{k}={v}" for k, v in s["group"].items()) or metric for s in out["series"]]
    rows: list[dict[str, object]] = []
    for i, p in enumerate(out["series"][0]["points"] if out["series"] else []):
        row: dict[str, object] = {"time": p["time"]}
        for g, s in zip(groups, out["series"], strict=True):
            row[g] = s["points"][i]["value"]
        rows.append(row)
    from modelyard.cli._common import table

    console.print(table(rows, ["time", *groups], title=f"{metric} per {step:g}s"))


@app.command("alerts")
def alerts(ctx: typer.Context,
           evaluate: bool = typer.Option(False, help="evaluate the rules now first")) -> None:
    """Alert rules of the project and their state."""
    c = client(ctx)
    rows = c.metrics.evaluate_alerts() if evaluate else c.metrics.alerts()
    flat = [{"name": r["spec"]["name"], "metric": r["spec"]["metric"],
             "rule": f"{r['spec']['op']} {r['spec']['threshold']}",
             "deployment": r["spec"]["deployment"], "state": r["state"], "value": r["value"],
             "evaluated_at": r["evaluated_at"]} for r in rows]
    show(ctx, flat, ["name", "metric", "rule", "deployment", "state", "value", "evaluated_at"])


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
        raise typer.BadParameter(f"{text!r}: use a number and s, m, h or d (e.g. 30m)") from None
