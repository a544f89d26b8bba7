"""`modelyard train ...`: submit jobs, watch them, read their logs, cancel them."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from modelyard.cli._common import client, console, show, wants_json

app = typer.Typer(help="Training jobs: a queue, a scheduler and live logs.", no_args_is_help=True)

JOB_COLUMNS = ["id", "state", "trainer", "priority", "queue_position", "queue_reason", "attempt",
               "progress", "created_at"]
TERMINAL = ("succeeded", "failed", "cancelled")


def _kv(pairs: list[str], what: str) -> dict[str, Any]:
    """`key=value` pairs; values parsed as JSON when they can be (numbers, booleans)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} {pair!r} must look like key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command("trainers")
def trainers(ctx: typer.Context) -> None:
    """The built-in trainers and their hyperparameters (with defaults)."""
    show(ctx, client(ctx).training.trainers(), ["name", "task", "defaults", "description"],
         title="trainers")


@app.command("submit")
def submit(
    ctx: typer.Context,
    trainer: str = typer.Argument(None, help="a built-in trainer (see `modelyard train trainers`)"),
    snapshot: str = typer.Option(None, "--snapshot", "-s", help="dataset snapshot id"),
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-P", help="hyperparameter key=value (repeat it)")] = None,
    code: Annotated[Path | None, typer.Option(
        help="a .zip/.tar.gz code package to run instead")] = None,
    entrypoint: str = typer.Option("train.py", help="code package entry: script.py or mod:func"),
    cpu: float = 1.0, gpu: int = 0, memory_mb: int = 1024, workers: int = 1,
    processes: int = typer.Option(256, help="processes and threads a worker may run (its "
                                  "sandbox's limit)"),
    disk_mb: int = typer.Option(1024, help="size of a worker's private work dir and /tmp"),
    priority: int = 0, timeout_s: int = 3600, max_retries: int = 0,
    name: str = typer.Option(None), experiment: str = typer.Option(None),
    model_name: str = typer.Option(None, "--model-name", help="register the model under this "
                                   "name (default: the trainer's name)"),
    wait: bool = typer.Option(False, "--wait", "-w", help="follow progress until the job ends"),
) -> None:
    """Queue a training job."""
    c = client(ctx)
    code_ref = None
    if code is not None:
        uploaded = c.training.upload_code(code.read_bytes())
        code_ref = {"digest": uploaded["digest"], "entrypoint": entrypoint}
    job = c.training.submit(trainer, snapshot, hyperparameters=_kv(param or [], "--param"),
                            code=code_ref, resources={"cpu": cpu, "gpu": gpu,
                                                      "memory_mb": memory_mb, "workers": workers,
                                                      "processes": processes, "disk_mb": disk_mb},
                            priority=priority, timeout_s=timeout_s, max_retries=max_retries,
                            experiment=experiment, name=name, model_name=model_name)
    if not wait:
        show(ctx, job, title=job["id"])
        return
    # With --json, stdout holds the JSON document alone: no progress bar.
    job = _until_ended(c, job) if wants_json(ctx) else _watch(c, job)
    show(ctx, job, title=job["id"])
    if job["state"] != "succeeded":
        raise typer.Exit(1)


def _until_ended(c: Any, job: dict[str, Any]) -> dict[str, Any]:
    while job["state"] not in TERMINAL:
        time.sleep(0.5)
        job = c.training.get(job["id"])
    return job


def _watch(c: Any, job: dict[str, Any]) -> dict[str, Any]:
    """A progress bar over epochs (the `epochs` hyperparameter, when there is one)."""
    total = job["hyperparameters"].get("epochs")
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(job["id"], total=total, info="")
        while job["state"] not in TERMINAL:
            time.sleep(0.5)
            job = c.training.get(job["id"])
            p = job.get("progress") or {}
            metrics = " ".join(f"{k}={v:.4g}" for k, v in p.items()
                               if k != "step" and isinstance(v, (int, float)))
            where = (f"#{job['queue_position']} in queue, {job['queue_reason'] or 'starting'}"
                     if job["state"] == "queued" else job["state"])
            bar.update(task, completed=p["step"] + 1 if "step" in p else 0,
                       info=f"{where} {metrics}".strip())
    return job


@app.command("list")
def list_(ctx: typer.Context,
          state: Annotated[list[str] | None, typer.Option(
              "--state", help="queued, running, succeeded... (repeat it)")] = None,
          limit: int = 50, page_token: str = typer.Option(None)) -> None:
    """Jobs of the project, newest first, with their queue position, why a queued job waits,
    and the latest metrics."""
    page = client(ctx).training.list(state or None, limit, page_token)
    if wants_json(ctx):
        show(ctx, page)
        return
    show(ctx, [{**j, "progress": _progress(j)} for j in page["items"]], JOB_COLUMNS, title="jobs")
    if page.get("next_page_token"):
        console.print(f"more: --page-token {page['next_page_token']}")


def _progress(job: dict[str, Any]) -> str:
    p = job.get("progress") or {}
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


@app.command("show")
def show_job(ctx: typer.Context, job_id: str) -> None:
    """A job: its state, queue position and why it waits, progress, run and model version."""
    show(ctx, client(ctx).training.get(job_id), title=job_id)


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: str) -> None:
    """Cancel a job; a running one is stopped with every process it started."""
    show(ctx, client(ctx).training.cancel(job_id), title=job_id)


@app.command("logs")
def logs(ctx: typer.Context, job_id: str,
         follow: bool = typer.Option(False, "--follow", "-f", help="stream until the job ends"),
         offset: int = typer.Option(0, help="start at this byte")) -> None:
    """The job's output (stdout and stderr of every worker)."""
    for chunk in client(ctx).training.logs(job_id, follow=follow, offset=offset):
        sys.stdout.write(chunk)
        sys.stdout.flush()
