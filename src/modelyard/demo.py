"""`modelyard demo`: the whole lifecycle against an embedded server, step by step.

sklearn digits → dataset commit → training snapshot → digits-cnn job → model version with
lineage → alias `production` → deployment → predictions over HTTP → request latency from the
metrics store → the same path again as one pipeline in the workflow manager.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from modelyard.core.errors import ModelyardError
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.embedded import embedded_server

console = Console()
PROJECT = "demo"


def run_demo(home: str | None = None, keep: bool = False) -> int:
    """Returns the process exit code: 0 when every step worked."""
    data_dir = Path(home) if home else Path(tempfile.mkdtemp(prefix="modelyard-demo-"))
    settings = Settings(home=data_dir)
    summary: dict[str, Any] = {"data dir": str(data_dir)}
    try:
        with embedded_server(settings) as live:
            token = live.resolved_admin_token_file.read_text().strip()
            with Client(live.resolved_public_url, token, project=PROJECT) as client:
                summary["server"] = live.resolved_public_url
                results = run_lifecycle(client)
                summary.update(results["display"])
    except ModelyardError as e:
        console.print(f"[red]demo failed[/red] ({e.code}): {e.message} {e.details or ''}")
        return 1
    finally:
        if not keep and home is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    _print_summary(summary)
    return 0


def _step(text: str) -> Any:
    return console.status(f"[bold]{text}[/bold]", spinner="dots")


def run_lifecycle(client: Client) -> dict[str, Any]:
    """Every step against `client`'s server; returns raw figures and a display summary."""
    summary: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    if not any(p["name"] == PROJECT for p in client.list_projects()):
        client.create_project(PROJECT, "the modelyard demo")

    with _step("importing sklearn digits into dataset 'digits'"):
        commit = client.datasets.import_builtin("digits", "sklearn:digits",
                                                message="sklearn digits, 1,797 8x8 images")
        versions = client.datasets.versions("digits")
    latest = versions[-1] if versions else commit
    summary["dataset"] = f"digits v{latest.get('version')} ({latest.get('row_count', '?')} rows)"
    console.print(f"  dataset committed: {summary['dataset']}")

    with _step("materializing a seeded training snapshot"):
        snap = client.datasets.snapshot("digits", seed=0)
    summary["snapshot"] = f"{snap['id']} (hash {str(snap.get('hash', ''))[:12]})"
    console.print(f"  snapshot ready: {summary['snapshot']}")

    with _step("training digits-cnn as a job on the local executor"):
        job = client.training.submit("digits-cnn", snap["id"], hyperparameters={"epochs": 8},
                                     experiment="demo")
        job = client.training.wait(job["id"], timeout=600)
    if job["state"] != "succeeded":
        logs = "".join(client.training.logs(job["id"]))[-2000:]
        raise ModelyardError(f"training job {job['id']} ended {job['state']}: {job['message']}",
                             {"log_tail": logs})
    mv = job["model_version"] or {}
    accuracy = (mv.get("metrics") or {}).get("val_accuracy", job["progress"].get("val_accuracy"))
    summary["job"] = job["id"]
    summary["validation accuracy"] = f"{accuracy:.3f}" if accuracy is not None else "?"
    summary["model version"] = f"{mv.get('model')}@{mv.get('version')}"
    console.print(f"  job {job['id']} succeeded: validation accuracy {summary['validation accuracy']}")

    client.registry.set_alias(mv["model"], "production", mv["version"])
    lineage = client.registry.lineage(f"model_version:{mv['model']}@{mv['version']}")
    kinds = sorted({n.get("kind", "?") for n in lineage.get("nodes", [])})
    summary["lineage"] = ", ".join(kinds)

    with _step("deploying digits-cnn@production and sending predictions"):
        client.serving.create("digits", f"{mv['model']}@production", warm=True)
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = [[[float(v) * 15 for v in row] for row in img] for img in digits.images[-200:]]
        truth = [str(t) for t in digits.target[-200:]]
        correct = 0
        latencies = []
        for i in range(0, len(images), 10):
            t0 = time.perf_counter()
            out = client.serving.predict("digits", images[i : i + 10])
            latencies.append((time.perf_counter() - t0) * 1000)
            correct += sum(p["label"] == y for p, y in zip(out["predictions"], truth[i : i + 10],
                                                           strict=True))
    summary["a prediction"] = f"{out['predictions'][0]['label']} " \
                              f"(confidence {out['predictions'][0]['confidence']:.2f}, truth {truth[-10]})"
    summary["served accuracy (200 dataset images)"] = f"{correct / len(images):.3f}"
    console.print(f"  served {len(images)} images: accuracy {summary['served accuracy (200 dataset images)']}")

    end = datetime.now(UTC) + timedelta(seconds=1)
    q = client.metrics.query("latency_p50", end - timedelta(minutes=30), end, step_s=1800,
                             deployment="digits")
    count = client.metrics.query("count", end - timedelta(minutes=30), end, step_s=1800,
                                 deployment="digits")
    p50 = _first_value(q)
    summary["request latency p50 (server)"] = f"{p50:.2f} ms" if p50 is not None else "?"
    # one prediction event per image: 20 requests of 10 images are 200 events
    summary["predictions recorded"] = _first_value(count)
    raw.update(job=job, model_version=mv, val_accuracy=accuracy, lineage=lineage,
               served_accuracy=correct / len(images), latency_p50_ms=p50,
               requests_recorded=_first_value(count), snapshot=snap)
    raw["pipeline_run"] = _pipeline(client, summary)
    return {"raw": raw, "display": summary}


def _pipeline(client: Client, summary: dict[str, Any]) -> dict[str, Any]:
    with _step("running the same lifecycle as the 'digits-lifecycle' pipeline"):
        client.workflows.register("builtin:digits-lifecycle")
        run = client.workflows.run("digits-lifecycle", wait=True)
    states = {s["step"]: s["state"] for s in run.get("steps", [])}
    summary["pipeline run"] = f"{run['id']} {run['state']} ({len(states)} steps)"
    console.print(f"  pipeline {run['state']}: " + ", ".join(f"{k}={v}" for k, v in states.items()))
    if run["state"] != "succeeded":
        raise ModelyardError(f"pipeline run {run['id']} ended {run['state']}", {"steps": states})
    return run


def _first_value(result: dict[str, Any]) -> Any:
    for series in result.get("series", []):
        for point in series.get("points", []):
            if point.get("value") is not None:
                return point["value"]
    return None


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="modelyard demo", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("result")
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)
