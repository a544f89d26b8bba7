"""`modelyard pipeline ...`: register, run, watch, cancel and schedule pipelines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.tree import Tree

from modelyard.cli._common import client, console, show, wants_json

app = typer.Typer(help="Durable pipelines: DAGs of steps, cached, resumable, scheduled.",
                  no_args_is_help=True)

RUN_COLUMNS = ["id", "pipeline", "state", "trigger", "created_by", "created_at", "finished_at"]
PARAM_OPTION = typer.Option([], "--param", "-P", help="key=value (value as JSON), repeatable")
MATCH_OPTION = typer.Option([], help="event payload key=value, repeatable")
STYLE = {"succeeded": "green", "cached": "cyan", "running": "yellow", "pending": "dim",
         "failed": "red", "cancelled": "magenta", "skipped": "dim"}


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: use key=value (value as JSON or plain text)")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command("register")
def register(ctx: typer.Context, target: str = typer.Argument(
        ..., help="your pipeline's source: a folder (zipped here) or a .zip/.tar.gz; or the "
                  "name of a built-in (digits-lifecycle, continuous-training)"),
        entry: str = typer.Option("pipeline:pipeline",
                                  help="module:attr in the package naming the Pipeline (or a "
                                       "function returning one)"),
        name: str = typer.Option(None, help="register under this name")) -> None:
    """Register or update a pipeline. The server loads a package's pipeline in its sandbox and
    stores the definition under a hash of the package's content: edit and register again for
    a new version."""
    c = client(ctx).workflows
    p = c.register_package(Path(target), entry, name) if Path(target).exists() else \
        c.register(target, name)
    show(ctx, {k: p.get(k) for k in ("name", "source", "entry", "package_digest",
                                     "definition_hash", "updated_at")})


@app.command("list")
def list_(ctx: typer.Context) -> None:
    rows = client(ctx).workflows.list()
    for r in rows:
        r["steps"] = len(r["steps"])
    show(ctx, rows, ["name", "source", "steps", "definition_hash", "updated_at"],
         title="pipelines")


@app.command("run")
def run(ctx: typer.Context, name: str,
        param: list[str] = PARAM_OPTION,
        wait: bool = typer.Option(False, help="wait for the run to end and draw it"),
        no_cache: bool = typer.Option(False, "--no-cache",
                                      help="run every step afresh, taking nothing from the "
                                           "cache"),
        version: str = typer.Option(None, help="run this older version (a hash or its first "
                                               "8+ characters; see `pipeline versions`)")
        ) -> None:
    """Start a run (202); with --wait, follow it to the end."""
    c = client(ctx)
    r = c.workflows.run(name, _params(param), wait=wait, version=version, no_cache=no_cache)
    if wait:
        _draw(ctx, c.workflows.get(name), r)
        if r["state"] != "succeeded":
            raise typer.Exit(1)
    else:
        show(ctx, {"id": r["id"], "state": r["state"]})


@app.command("versions")
def versions(ctx: typer.Context, name: str) -> None:
    """The pipeline's versions, oldest first; `current` is what a run gets by default, any
    other runs with `pipeline run NAME --version HASH`."""
    rows = client(ctx).workflows.versions(name)
    if not wants_json(ctx):
        for r in rows:
            r["current"] = "*" if r["current"] else ""
    show(ctx, rows, ["hash", "current", "package_digest", "created_at"], title="versions")


@app.command("runs")
def runs(ctx: typer.Context, pipeline: str = typer.Option(None), limit: int = 20) -> None:
    show(ctx, client(ctx).workflows.list_runs(pipeline, limit), RUN_COLUMNS, title="runs")


@app.command("show")
def show_(ctx: typer.Context, target: str = typer.Argument(
        ..., help="a pipeline name (its newest run) or a run id")) -> None:
    """Draw the DAG with each step's state."""
    c = client(ctx)
    if target.startswith("prun_"):
        r: dict[str, Any] | None = c.workflows.get_run(target)
        pipeline = c.workflows.get(r["pipeline"])  # type: ignore[index]
    else:
        pipeline = c.workflows.get(target)
        latest = c.workflows.list_runs(target, limit=1)
        r = c.workflows.get_run(latest[0]["id"]) if latest else None
    _draw(ctx, pipeline, r)


@app.command("cancel")
def cancel(ctx: typer.Context, run_id: str) -> None:
    r = client(ctx).workflows.cancel(run_id)
    show(ctx, {"id": r["id"], "state": r["state"], "cancel_requested": r["cancel_requested"]})


@app.command("schedule")
def schedule(ctx: typer.Context, name: str,
             cron: str = typer.Option(None, help="cron expression, e.g. '0 3 * * *'"),
             event: str = typer.Option(None,
                                       help="dataset.commit | alias.moved | alert.firing"),
             match: list[str] = MATCH_OPTION,
             param: list[str] = PARAM_OPTION,
             no_cache: bool = typer.Option(False, "--no-cache",
                                           help="its runs take no step result from the cache "
                                                "(e.g. retrain on an alert with unchanged "
                                                "data)")) -> None:
    """Start runs on a cron schedule or on an event."""
    t = client(ctx).workflows.schedule(name, cron, event=event, match=_params(match),
                                       params=_params(param), no_cache=no_cache)
    show(ctx, t)


@app.command("schedules")
def schedules(ctx: typer.Context, pipeline: str = typer.Option(None)) -> None:
    show(ctx, client(ctx).workflows.list_schedules(pipeline),
         ["id", "pipeline", "kind", "cron", "event", "match", "enabled", "next_fire_at"],
         title="schedules")


@app.command("unschedule")
def unschedule(ctx: typer.Context, schedule_id: str) -> None:
    client(ctx).workflows.delete_schedule(schedule_id)
    console.print(f"deleted {schedule_id}")


def dag_tree(pipeline: dict[str, Any], run: dict[str, Any] | None) -> Tree:
    """The pipeline as a tree from its first steps downstream; a step with several parents is
    drawn in full under the first and referenced under the others."""
    states = {s["step"]: s for s in (run or {}).get("steps", [])}
    steps = {s["name"]: s for s in pipeline["steps"]}
    children: dict[str, list[str]] = {n: [] for n in steps}
    for s in steps.values():
        for up in dict.fromkeys(s["inputs"].values()):
            children[up].append(s["name"])
    title = f"[bold]{pipeline['name']}[/bold] {pipeline['definition_hash'][:12]}"
    if run:
        title += f"  run {run['id']} [{STYLE.get(run['state'], '')}]{run['state']}[/]"
    root = Tree(title)
    drawn: set[str] = set()

    def label(name: str) -> str:
        st = states.get(name, {})
        state = st.get("state", "not run")
        extra = f" ×{len([k for k in states if k.startswith(name + '[')])}" \
            if steps[name].get("map_over") else ""
        attempts = f" attempts={st['attempts']}" if st.get("attempts", 0) > 1 else ""
        err = f" — {st['error'][:60]}" if st.get("error") and state in ("failed", "skipped") \
            else ""
        return (f"{name} [{STYLE.get(state, '')}]{state}[/]{extra}"
                f" [dim]{steps[name]['kind']}[/dim]{attempts}{err}")

    def add(parent: Tree, name: str) -> None:
        if name in drawn:
            parent.add(f"[dim]↳ {name} (above)[/dim]")
            return
        drawn.add(name)
        node = parent.add(label(name))
        for child in children[name]:
            add(node, child)

    for name, s in steps.items():
        if not s["inputs"]:
            add(root, name)
    return root


def _draw(ctx: typer.Context, pipeline: dict[str, Any], run: dict[str, Any] | None) -> None:
    if wants_json(ctx):
        show(ctx, {"pipeline": pipeline, "run": run})
        return
    console.print(dag_tree(pipeline, run))
    if run and run.get("error"):
        console.print(f"[red]{run['error']}[/red]")
    for st in (run or {}).get("steps", []):
        if st["state"] != "failed" or not (st.get("traceback") or st.get("log_tail")):
            continue
        console.rule(f"step {st['step']} failed")
        if st.get("log_tail"):
            console.print("[bold]its last output[/bold]")
            console.print(st["log_tail"], markup=False, highlight=False)
        if st.get("traceback"):
            console.print("[bold]traceback[/bold]")
            console.print(st["traceback"].rstrip(), markup=False, highlight=False)
