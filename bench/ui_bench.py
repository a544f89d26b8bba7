"""Web console page render time with 10,000 runs and 1,000 jobs in the store.

The demo's lifecycle runs first against a live server (a dataset, a trained model with lineage, a
deployment with traffic, a pipeline run), plus a two-trial HPO study and an alert rule; then 10,000 runs (a few metric points each) and 1,000
jobs are inserted through the registry service and the training store directly. A server with its
background loops off then serves the console to Debian's headless Chromium, and each page is
loaded `REPEATS` times from scratch (HTML, scripts, sign-in check, API calls, charts) until it
says it rendered. The headline is the slowest page's median: the goal is under one second.

`python -m bench.ui_bench` writes bench/results/ui.json.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench._harness import percentile, write_result
from modelyard.core.ids import new_id, utcnow
from modelyard.core.settings import Settings
from modelyard.demo import run_lifecycle
from modelyard.sdk.client import Client
from modelyard.server.embedded import embedded_server
from modelyard.server.platform import Platform
from modelyard.training.models import Job, JobState, Resources
from modelyard.ui import build_vendor, vendor_ready
from tests.ui._browser import LAUNCH_ARGS, ensure_chromium

RUNS = 10_000
JOBS = 1_000
REPEATS = 5
PROJECT = "demo"


def seed(settings: Settings, rng: random.Random) -> dict[str, Any]:
    """10,000 runs and 1,000 jobs straight into the stores; returns how long each took."""
    platform = Platform(settings.model_copy(update={"background": False}))
    platform.start()
    try:
        t0 = time.perf_counter()
        for i in range(RUNS):
            run = platform.registry.create_run(PROJECT, f"sweep-{i % 20}", {"lr": rng.random() / 10,
                                               "batch": rng.choice([32, 64, 128])}, {}, None,
                                               None, None, "bench")
            loss = 2.0
            points = []
            for step in range(5):
                loss *= 0.5 + rng.random() / 2
                points.append(("train_loss", step, loss, time.time()))
            platform.registry.log_metrics(PROJECT, run.id, points)
        runs_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        now = utcnow()
        for i in range(JOBS):
            state = JobState.queued if i % 20 == 0 else (
                JobState.failed if i % 7 == 0 else JobState.succeeded)
            created = now - timedelta(minutes=JOBS - i)
            ended = state is not JobState.queued
            job_id = new_id("job")
            platform.training.store.add(Job(
                id=job_id, project=PROJECT, name=f"digits-cnn-{job_id[-6:]}", state=state,
                trainer="digits-cnn", code=None, code_hash="0" * 64, dataset_snapshot=None,
                hyperparameters={"lr": 0.01, "epochs": 3}, resources=Resources(), priority=0,
                timeout_s=3600, max_retries=0, attempt=0, created_by="bench", created_at=created,
                queued_at=created, scheduled_at=created if ended else None,
                started_at=created if ended else None,
                finished_at=created + timedelta(seconds=20) if ended else None, run_id=None,
                experiment="bench", exit_code=0 if state is JobState.succeeded else None,
                message=state.value, checkpoint=None, model_version=None,
                progress={"train_loss": rng.random()}, gpus=[]))
        jobs_s = time.perf_counter() - t0
    finally:
        platform.stop()
    return {"seed_runs_s": round(runs_s, 2), "seed_jobs_s": round(jobs_s, 2)}


def small_study(client: Client, snapshot: str) -> str:
    """A two-trial study, so the study page draws its trials chart; returns its name."""
    client.hpo.create("bench-lr", search_space={"lr": {"type": "float", "low": 0.005,
                                                       "high": 0.05, "log": True}},
                      objective="val_accuracy", n_trials=2, trainer="digits-cnn",
                      dataset_snapshot=snapshot, hyperparameters={"epochs": 1}, pruner="none")
    if client.hpo.wait("bench-lr", timeout=600)["state"] != "completed":
        raise RuntimeError("the bench's study did not complete")
    return "bench-lr"


def measure(url: str, token: str, routes: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per page label: median and p95 of full loads, median of the in-page render time."""
    from playwright.sync_api import sync_playwright

    out: dict[str, dict[str, float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(ensure_chromium()), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{url}/ui/")
        page.fill("[data-testid=token]", token)
        page.click("form[data-testid=signin] button[type=submit]")
        page.wait_for_selector(".page[data-ready]")
        for label, route in routes.items():
            target = f"{url}/ui/#/{PROJECT}/{route}"
            page.goto(target)
            page.wait_for_selector(".page[data-ready]", timeout=30_000)  # warm-up load
            full, inner = [], []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                page.reload()
                ready = page.wait_for_selector(".page[data-ready]", timeout=30_000)
                full.append((time.perf_counter() - t0) * 1000)
                if ready.get_attribute("data-ready") != "true":
                    raise RuntimeError(f"page {route} failed: {page.inner_text('.page')[:500]}")
                inner.append(float(ready.get_attribute("data-render-ms") or "nan"))
            out[label] = {"load_median_ms": round(statistics.median(full), 1),
                          "load_p95_ms": round(percentile(full, 95), 1),
                          "render_median_ms": round(statistics.median(inner), 1)}
            print(f"  {label:<14} load {out[label]['load_median_ms']:7.1f} ms  "
                  f"render {out[label]['render_median_ms']:7.1f} ms", flush=True)
        browser.close()
    return out


def main() -> None:
    if not vendor_ready():
        build_vendor()
    rng = random.Random(0)
    home = Path(tempfile.mkdtemp(prefix="modelyard-ui-bench-"))
    settings = Settings(home=home / "home")
    try:
        with embedded_server(settings) as live:
            token = live.resolved_admin_token_file.read_text().strip()
            with Client(live.resolved_public_url, token, project=PROJECT) as client:
                raw = run_lifecycle(client)["raw"]
                study = small_study(client, raw["snapshot"]["id"])
                client.metrics.create_alert("slow-digits", "latency_p95", 100.0,
                                            deployment="digits", window_s=3600)
                client.metrics.evaluate_alerts()
        figures: dict[str, Any] = seed(settings, rng)
        quiet = settings.model_copy(update={"background": False})
        with embedded_server(quiet) as live:
            mv = raw["model_version"]
            routes = {"datasets": "datasets", "dataset": "datasets/digits", "jobs": "jobs",
                      "job": f"jobs/{raw['job']['id']}", "runs": "runs",
                      "run": f"runs/{raw['job']['run_id']}", "hpo": "hpo", "models": "models",
                      "model": f"models/{mv['model']}", "deployments": "deployments",
                      "deployment": "deployments/digits", "pipelines": "pipelines",
                      "study": f"hpo/{study}", "pipeline": "pipelines/digits-lifecycle",
                      "pipeline run": f"pipelines/runs/{raw['pipeline_run']['id']}",
                      "metrics": "metrics"}
            pages = measure(live.resolved_public_url, token, routes)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    slowest = max(pages, key=lambda r: pages[r]["load_median_ms"])
    figures.update(runs=RUNS, jobs=JOBS, repeats=REPEATS, pages=pages, slowest_page=slowest)
    write_result(
        name="ui",
        goal="every console page renders in < 1 s with 10,000 runs and 1,000 jobs in the store",
        metric="slowest_page_median_load_ms", value=pages[slowest]["load_median_ms"],
        target=1000.0, higher_is_better=False, figures=figures, peers={}, script=__file__)


if __name__ == "__main__":
    main()
