"""`modelyard metrics` commands."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import typer

from modelyard.cli._common import client, console, show, wants_json
from modelyard.core.ids import utcnow

app = typer.Typer(help="Prediction metrics of deployed models.", no_args_is_help=True)


@app.command("query")
def query(
    ctx: typer.Context,
    metric: str = typer.Argument(help="count, rate, latency_mean, latency_p50, latency_p95, "
                                      "latency_p99, error_rate, accuracy, mae or rmse"),
    since: str = typer.Option("1h", help="window ending now: e.g. 30m, 1h, 2d"),
    step: float = typer.Option(60, help="step in seconds"),
    group_by: str = typer.Option(None, help="deployment, model or version"),
    deployment: str = typer.Option(None, help="only this deployment"),
    chart: bool = typer.Option(False, "--chart", help="draw a terminal line chart, not a table"),
) -> None:
    """Print one row per step and one column per group (or a chart with --chart)."""
    end = _step_ceiling(utcnow(), step)  # whole steps: the store answers them from rollups
    start = end - _duration(since)
    out = client(ctx).metrics.query(metric, start, end, step, group_by, deployment)
    if wants_json(ctx):
        show(ctx, out)
        return
    groups = [",".join(f"{k}={v}" for k, v in s["group"].items()) or metric for s in out["series"]]
    if chart:
        from rich.text import Text

        console.print(Text.from_ansi(_chart(metric, step, groups, out["series"])))
        return
    rows: list[dict[str, object]] = []
    for i, p in enumerate(out["series"][0]["points"] if out["series"] else []):
        row: dict[str, object] = {"time": p["time"]}
        for g, s in zip(groups, out["series"], strict=True):
            row[g] = s["points"][i]["value"]
        rows.append(row)
    from modelyard.cli._common import table

    console.print(table(rows, ["time", *groups], title=f"{metric} per {step:g}s"))


_EPOCH = datetime(1970, 1, 1)


def _step_ceiling(t: datetime, step: float) -> datetime:
    """`t` rounded up to a whole multiple of `step` seconds since the epoch (UTC, naive)."""
    seconds = (t - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.ceil(seconds / step) * step)


def _chart(metric: str, step: float, groups: list[str], series: list[dict[str, Any]]) -> str:
    """One line per group over time, drawn with plotext; steps without data are gaps."""
    import plotext as plt

    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(min(console.width, 120), 20)
    plt.title(f"{metric} per {step:g}s")
    for name, s in zip(groups, series, strict=True):
        points = [(i, p["value"]) for i, p in enumerate(s["points"]) if p["value"] is not None]
        if points:
            plt.plot([i for i, _ in points], [v for _, v in points], label=name)
    if series and series[0]["points"]:
        times = [p["time"][11:16] for p in series[0]["points"]]  # HH:MM
        every = max(1, len(times) // 6)
        plt.xticks(list(range(0, len(times), every)), times[::every])
    return str(plt.build())


@app.command("feedback")
def feedback(
    ctx: typer.Context,
    labels: str = typer.Argument(help='true labels by request id as JSON, {"REQUEST_ID": '
                                 '"LABEL", ...}, or @FILE with it (a number for a regression '
                                 "model, as text)"),
) -> None:
    """Send the true labels of earlier predictions (accuracy, mae and rmse read them)."""
    import json
    from pathlib import Path

    text = Path(labels[1:]).read_text() if labels.startswith("@") else labels
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise typer.BadParameter(f"not JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter('write an object: {"REQUEST_ID": "LABEL", ...}')
    n = client(ctx).metrics.feedback({str(k): str(v) for k, v in parsed.items()})
    show(ctx, {"accepted": n})


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
