"""`modelyard deploy` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._common import client, show

app = typer.Typer(help="Deployments of registered models, and predictions.", no_args_is_help=True)

COLUMNS = ["name", "model_ref", "traffic", "shadow_version", "pinned", "updated_at"]


def _traffic(pairs: list[str]) -> dict[str, int] | None:
    """`3=90 4=10` -> {"3": 90, "4": 10}."""
    if not pairs:
        return None
    out: dict[str, int] = {}
    for p in pairs:
        v, sep, w = p.partition("=")
        if not sep or not w.strip().lstrip("-").isdigit():
            raise typer.BadParameter(f"{p!r}: write VERSION=PERCENT, e.g. 3=90 4=10")
        out[v.strip()] = int(w)
    return out


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    model_ref: str = typer.Argument(help="MODEL@ALIAS or MODEL@VERSION"),
    traffic: Annotated[list[str] | None,
                       typer.Option(help="VERSION=PERCENT, repeatable")] = None,
    shadow: int = typer.Option(None, help="a version that gets a copy of every request"),
    max_batch_size: int = typer.Option(None),
    max_batch_delay_ms: float = typer.Option(None),
    pinned: bool = typer.Option(False, help="keep loaded"),
    warm: bool = typer.Option(False, help="load now"),
) -> None:
    """Deploy MODEL_REF under NAME."""
    batching = {k: v for k, v in {"max_batch_size": max_batch_size,
                                  "max_batch_delay_ms": max_batch_delay_ms}.items()
                if v is not None}
    show(ctx, client(ctx).serving.create(name, model_ref, traffic=_traffic(traffic or []),
                                         shadow_version=shadow, batching=batching,
                                         pinned=pinned, warm=warm))


@app.command("list")
def list_(ctx: typer.Context) -> None:
    show(ctx, client(ctx).serving.list(), COLUMNS)


@app.command("show")
def show_(ctx: typer.Context, name: str) -> None:
    show(ctx, client(ctx).serving.get(name))


@app.command("traffic")
def traffic(ctx: typer.Context, name: str,
            split: Annotated[list[str] | None,
                             typer.Argument(help="VERSION=PERCENT ...; none: all to model_ref")]
            = None) -> None:
    """Set the traffic split, e.g. `modelyard deploy traffic digits 3=90 4=10`."""
    show(ctx, client(ctx).serving.set_traffic(name, _traffic(split or [])))


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    client(ctx).serving.delete(name)
    show(ctx, {"deleted": name})


@app.command("predict")
def predict(
    ctx: typer.Context,
    name: str,
    inputs: str = typer.Argument(help="a JSON list of raw inputs, or @FILE with one"),
    version: int = typer.Option(None, help="a specific version instead of the split"),
) -> None:
    """Send raw inputs; prints one prediction per input."""
    text = Path(inputs[1:]).read_text() if inputs.startswith("@") else inputs
    try:
        values: Any = json.loads(text)
    except json.JSONDecodeError as e:
        raise typer.BadParameter(f"inputs are not JSON: {e}") from None
    if not isinstance(values, list):
        values = [values]
    out = client(ctx).serving.predict(name, values, version)
    # each row's request id is what feedback names (`REQUEST/N` for row N of several)
    rows = [{"#": i, **p, "model_version": out["model_version"],
             "request_id": out["request_id"] if len(out["predictions"]) == 1
             else f"{out['request_id']}/{i}"}
            for i, p in enumerate(out["predictions"])]
    show(ctx, rows, ["#", "label", "confidence", "model_version"],
         title=f"request {out['request_id']}")
