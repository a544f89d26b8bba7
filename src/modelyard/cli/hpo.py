"""`modelyard hpo ...`: create studies, watch their trials, stop them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._common import client, console, show, table, wants_json

app = typer.Typer(help="Hyperparameter tuning: studies whose trials are training jobs.",
                  no_args_is_help=True)

STUDY_COLUMNS = ["name", "state", "trainer", "objective", "trials", "best", "created_at"]
TRIAL_COLUMNS = ["number", "state", "value", "params", "step", "job_id"]


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _study_row(s: dict[str, Any]) -> dict[str, Any]:
    spec, best = s["spec"], s.get("best")
    done = sum(s.get("counts", {}).values())
    return {"name": s["name"], "state": s["state"], "trainer": spec.get("trainer") or "code",
            "objective": f"{spec['objective']['direction']} {spec['objective']['metric']}",
            "trials": f"{done}/{spec['n_trials']}",
            "best": _fmt(best["value"]) if best else "-", "created_at": s["created_at"]}


def _trial_row(t: dict[str, Any]) -> dict[str, Any]:
    return {"number": t["number"], "state": t["state"],
            "value": _fmt(t["value"]) if t.get("value") is not None else "-",
            "params": ", ".join(f"{k}={_fmt(v)}" for k, v in t["params"].items()),
            "step": t.get("metrics", {}).get("step", "-"), "job_id": t.get("job_id") or "-"}


@app.command("create")
def create(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="a JSON or YAML study spec", exists=True,
                                              dir_okay=False)],
    name: Annotated[str | None, typer.Option(help="override the spec's name")] = None,
) -> None:
    """Creates a study from a spec file (the body of POST .../hpo/studies)."""
    import yaml  # type: ignore[import-untyped]

    text = spec_file.read_text()
    spec: dict[str, Any] = (json.loads(text) if spec_file.suffix == ".json"
                            else yaml.safe_load(text))
    if name:
        spec["name"] = name
    made = client(ctx).hpo.create_from_spec(spec)
    if wants_json(ctx):
        show(ctx, made)
    else:
        console.print(f"created study [bold]{made['name']}[/] ({made['id']}): "
                      f"{made['spec']['n_trials']} trials, at most "
                      f"{made['spec']['max_parallel']} at once")


@app.command("list")
def list_studies(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="running, completed or stopped")] = None,
) -> None:
    """The project's studies, newest first."""
    studies = client(ctx).hpo.list(state)
    show(ctx, studies if wants_json(ctx) else [_study_row(s) for s in studies], STUDY_COLUMNS)


@app.command("show")
def show_study(ctx: typer.Context, study: Annotated[str, typer.Argument(help="id or name")]) -> None:
    """The study's trials side by side, and the best so far."""
    c = client(ctx)
    got, trials = c.hpo.get(study), c.hpo.trials(study)
    if wants_json(ctx):
        show(ctx, {"study": got, "trials": trials})
        return
    row = _study_row(got)
    console.print(f"study [bold]{got['name']}[/] ({got['id']}) {got['state']}: "
                  f"{row['objective']}, trials {row['trials']}  {got.get('message') or ''}")
    console.print(table([_trial_row(t) for t in trials], TRIAL_COLUMNS, title="trials"))
    best = got.get("best")
    if best:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best["params"].items())
        console.print(f"best so far: trial {best['number']} "
                      f"{got['spec']['objective']['metric']}={_fmt(best['value'])} ({params})")
    else:
        console.print("best so far: none (no trial has completed yet)")
    if got.get("best_model_version"):
        mv = got["best_model_version"]
        console.print(f"best model version: {mv['model']}@{mv['version']}")


@app.command("stop")
def stop(ctx: typer.Context, study: Annotated[str, typer.Argument(help="id or name")]) -> None:
    """Stops a running study: its active trials' jobs are cancelled."""
    got = client(ctx).hpo.stop(study)
    if wants_json(ctx):
        show(ctx, got)
    else:
        console.print(f"study {got['name']} {got['state']}")
