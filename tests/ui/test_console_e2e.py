"""The console in real headless Chromium against a live server holding the demo's objects.

Signs in with a pasted token, walks every page, promotes an alias and changes a canary split
through the UI (checked through the API), and checks a viewer gets no write controls and that the
server refuses a viewer's write anyway. Screenshots of each page land in test-artifacts/ui/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.ui import build_vendor, vendor_ready
from tests._servers.live import live_server
from tests.ui._browser import ARTIFACTS, LAUNCH_ARGS, ensure_chromium

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(600)]

sync_api = pytest.importorskip("playwright.sync_api", reason="install the dev extra (playwright)")

PROJECT = "demo"
LR_SPACE = {"lr": {"type": "float", "low": 0.005, "high": 0.05, "log": True}}
WRITE_CONTROLS = ", ".join(f"[data-testid={t}]" for t in (
    "promote", "canary-form", "apply-split", "reset-split", "rerun", "cancel-run", "cancel-job",
    "evaluate-alerts", "stop-study"))
PAGE_ERRORS: list[str] = []  # uncaught script errors of every page opened


@dataclass
class World:
    url: str
    admin: str
    viewer: str
    client: Client
    raw: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from modelyard.demo import run_lifecycle

    if not vendor_ready():
        build_vendor()
    settings = Settings(home=tmp_path_factory.mktemp("ui") / "home")
    with live_server(settings) as live:
        admin = live.resolved_admin_token_file.read_text().strip()
        with Client(live.resolved_public_url, admin, project=PROJECT) as client:
            raw = run_lifecycle(client)["raw"]
            # what the demo does not make: a small study (trials chart) and a firing alert
            client.hpo.create("ui-lr", search_space=LR_SPACE, objective="val_accuracy",
                              n_trials=2, trainer="digits-cnn",
                              dataset_snapshot=raw["snapshot"]["id"],
                              hyperparameters={"epochs": 1}, pruner="none")
            assert client.hpo.wait("ui-lr", timeout=300)["state"] == "completed"
            client.metrics.create_alert("slow-digits", "latency_p95", 0.0001,
                                        deployment="digits", window_s=3600)
            client.metrics.evaluate_alerts()
            client.datasets.delete_rows("digits", where="label = '7'", message="drop the sevens")
            viewer = client.create_user("vic")["token"]
            client.set_member(PROJECT, "vic", "viewer")
            yield World(live.resolved_public_url, admin, viewer, client, raw)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = ensure_chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        yield b
        b.close()


def signed_in(browser: Any, world: World, token: str) -> Any:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.on("pageerror", lambda e: PAGE_ERRORS.append(f"{page.url}: {e}"))
    page.goto(f"{world.url}/ui/")
    page.fill("[data-testid=token]", token)
    page.click("form[data-testid=signin] button[type=submit]")
    page.wait_for_selector(".page[data-ready=true]")
    return page


def visit(page: Any, world: World, route: str, shot: str | None = None) -> Any:
    """Opens `#/demo/<route>`, waits until the page says it rendered, saves a screenshot."""
    target = f"{world.url}/ui/#/{PROJECT}/{route}"
    if page.url == target:
        page.reload()  # the same hash again fires no hashchange
    else:
        page.goto(target)
    page.wait_for_selector(f'.page[data-ready=true][data-route="#/{PROJECT}/{route}"]',
                           timeout=15_000)
    assert not page.query_selector(".page > .error"), page.inner_text(".page .error")
    if shot:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(300)  # charts size themselves on the next frame
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    return page


def test_editor_walks_every_page_and_steers_the_platform(browser: Any, world: World) -> None:
    page = signed_in(browser, world, world.admin)
    job = world.raw["job"]["id"]
    mv = world.raw["model_version"]
    run = world.raw["pipeline_run"]["id"]
    assert "admin" in page.inner_text("[data-testid=whoami]")

    visit(page, world, "datasets", "01-datasets")
    assert "digits" in page.inner_text(".page")
    visit(page, world, "datasets/digits")
    assert page.query_selector("[data-testid=label-bars] .bar-row")
    page.click("[data-testid=diff-form] button[type=submit]")  # newest against the one before
    page.wait_for_selector("[data-testid=diff-bars] .bar-row")
    assert page.inner_text("[data-testid=diff-bars]").split() == ["7", "-179"]
    page.screenshot(path=str(ARTIFACTS / "02-dataset.png"), full_page=True)

    visit(page, world, "jobs", "03-jobs")
    assert job in page.inner_html(".page")
    visit(page, world, f"jobs/{job}", "04-job")
    page.wait_for_function("() => document.querySelector('[data-testid=logs]').textContent.length > 0")
    assert "train_loss" in page.inner_text("[data-testid=logs]")
    assert page.query_selector_all(".chart canvas"), "the job's metric curves were not drawn"
    assert not page.query_selector("[data-testid=cancel-job]"), "a finished job offers cancel"

    visit(page, world, "runs", "05-runs")
    assert page.query_selector_all(".page tbody tr")
    visit(page, world, "hpo", "06-hpo")
    assert "ui-lr" in page.inner_text(".page")
    visit(page, world, "hpo/ui-lr", "06-hpo-study")
    trials = page.inner_text("[data-testid=trials]")
    assert "val_accuracy per trial, and best so far" in page.inner_text(".page")
    assert page.query_selector_all("[data-testid=trials-chart] canvas"), "no trials chart"
    assert len(page.query_selector_all("[data-testid=trials] tbody tr")) == 2, trials

    visit(page, world, "models", "07-models")
    visit(page, world, f"models/{mv['model']}", "08-model")
    lineage = page.query_selector_all("[data-testid=lineage] g.node")
    kinds = {n.get_attribute("class") for n in lineage}
    assert any("k-dataset_snapshot" in k for k in kinds) and any("k-job" in k for k in kinds)

    visit(page, world, "deployments", "09-deployments")
    visit(page, world, "deployments/digits", "10-deployment")
    assert page.query_selector_all("[data-testid=traffic] .bar-row")
    assert len(page.query_selector_all(".chart canvas")) >= 2, "latency and traffic charts missing"

    visit(page, world, "pipelines", "11-pipelines")
    visit(page, world, "pipelines/digits-lifecycle", "11-pipeline")
    assert len(page.query_selector_all("[data-testid=pipeline-dag] g.node")) == 10
    assert run in page.inner_text(".page")
    visit(page, world, f"pipelines/runs/{run}", "12-pipeline-run")
    steps = page.query_selector_all("[data-testid=pipeline-dag] g.node")
    assert len(steps) == 10
    assert all("s-succeeded" in (s.get_attribute("class") or "") for s in steps)
    # every step of the ten-step chain is on the page, none past its right edge
    right = page.eval_on_selector("[data-testid=pipeline-dag]", "e => e.getBoundingClientRect().right")
    assert right <= page.viewport_size["width"]
    assert page.query_selector("[data-testid=rerun]")

    visit(page, world, "metrics", "13-metrics")
    assert page.query_selector_all(".chart canvas")
    alerts = page.inner_text("[data-testid=alerts]")
    assert "slow-digits" in alerts and "firing" in alerts, alerts

    # Promote: point `production` back at version 1 through the UI, check through the API.
    model = mv["model"]
    before = world.client.registry.resolve(f"{model}@production")["version"]
    target = 1 if before != 1 else 2
    visit(page, world, f"models/{model}")
    page.fill("[data-testid=alias-name]", "production")
    page.select_option("[data-testid=alias-version]", str(target))
    page.click("[data-testid=promote]")
    page.wait_for_function(f"() => document.querySelector('[data-testid=promote-form] .result')"
                           f".textContent.includes('v{target}')")
    assert world.client.registry.resolve(f"{model}@production")["version"] == target
    visit(page, world, f"models/{model}", "14-model-promoted")
    assert f"production → v{target}" in page.inner_text("[data-testid=aliases]")

    # Canary: 90 / 10 between the two versions, through the UI.
    visit(page, world, "deployments/digits")
    rows = page.query_selector_all("[data-testid=canary-form] .split-row")
    for row, (version, percent) in zip(rows, [(1, 90), (2, 10)], strict=False):
        row.query_selector("input[name=version]").fill(str(version))
        row.query_selector("input[name=percent]").fill(str(percent))
    page.click("[data-testid=apply-split]")
    page.wait_for_function("() => document.querySelector('[data-testid=canary-form] .result')"
                           ".textContent.includes('applied')")
    assert world.client.serving.get("digits")["traffic"] == {"1": 90, "2": 10}
    visit(page, world, "deployments/digits", "15-deployment-canary")
    assert PAGE_ERRORS == []
    shots = {p.name for p in ARTIFACTS.glob("*.png")}
    assert {"02-dataset.png", "08-model.png", "10-deployment.png", "12-pipeline-run.png"} <= shots
    page.close()



def test_editor_cancels_a_running_job_and_reruns_a_pipeline(browser: Any, world: World) -> None:
    page = signed_in(browser, world, world.admin)
    job = world.client.training.submit("digits-cnn", world.raw["snapshot"]["id"],
                                       hyperparameters={"epochs": 200}, experiment="ui-cancel")
    visit(page, world, f"jobs/{job['id']}")
    page.evaluate("window.stillSamePage = true")
    # the open page follows the running job: its log lines and curves arrive without a reload
    page.wait_for_function("() => document.querySelector('[data-testid=logs]')?.textContent"
                           ".includes('epoch 2/200')", timeout=60_000)
    page.wait_for_selector(".chart canvas", timeout=60_000)
    page.wait_for_function("() => document.querySelector('.page h1 .badge')?.textContent"
                           " === 'running'", timeout=60_000)
    assert page.evaluate("window.stillSamePage") is True
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "17-job-live.png"), full_page=True)
    page.click("[data-testid=cancel-job]")
    page.wait_for_function(
        "() => document.querySelector('.page h1 .badge')?.textContent === 'cancelled'",
        timeout=15_000)
    assert world.client.training.get(job["id"])["state"] == "cancelled"

    before = {r["id"] for r in world.client.workflows.list_runs("digits-lifecycle")}
    visit(page, world, f"pipelines/runs/{world.raw['pipeline_run']['id']}")
    page.click("[data-testid=rerun]")
    page.wait_for_function(f"() => location.hash.includes('/pipelines/runs/') && "
                           f"!location.hash.endsWith('{world.raw['pipeline_run']['id']}')")
    page.wait_for_selector(".page[data-ready=true] [data-testid=pipeline-dag]")
    new = {r["id"] for r in world.client.workflows.list_runs("digits-lifecycle")} - before
    assert len(new) == 1
    run_id = new.pop()
    assert page.url.endswith(run_id)
    page.screenshot(path=str(ARTIFACTS / "18-pipeline-rerun.png"), full_page=True)
    for _ in range(4):  # its steps are mostly cached; nothing may be left running at teardown
        ended = world.client.workflows.get_run(run_id, wait_s=30)
        if ended["state"] in ("succeeded", "cancelled", "failed"):
            break
    assert ended["state"] == "succeeded", ended
    visit(page, world, f"pipelines/runs/{run_id}")
    assert page.inner_text(".page h1 .badge") == "succeeded"
    page.close()


def test_viewer_sees_no_write_controls_and_the_server_refuses_their_writes(
        browser: Any, world: World) -> None:
    page = signed_in(browser, world, world.viewer)
    model = world.raw["model_version"]["model"]
    assert "viewer" in page.inner_text("[data-testid=whoami]")
    visit(page, world, f"models/{model}", "16-model-as-viewer")
    assert page.query_selector_all("[data-testid=lineage] g.node")
    assert not page.query_selector("[data-testid=promote]")
    visit(page, world, "deployments/digits")
    assert not page.query_selector("[data-testid=canary-form]")
    visit(page, world, f"pipelines/runs/{world.raw['pipeline_run']['id']}")
    assert not page.query_selector("[data-testid=rerun]")

    visit(page, world, "metrics")
    assert page.query_selector("[data-testid=alerts] tbody tr")
    running = world.client.training.submit("digits-cnn", world.raw["snapshot"]["id"],
                                           hyperparameters={"epochs": 200},
                                           experiment="ui-viewer")
    try:
        for route in ("metrics", "pipelines/digits-lifecycle", f"jobs/{running['id']}"):
            visit(page, world, route)
            assert not page.query_selector(WRITE_CONTROLS), route
        assert page.inner_text(".page h1 .badge") in ("queued", "scheduled", "running")

        before = world.client.registry.resolve(f"{model}@production")["version"]
        split = world.client.serving.get("digits")["traffic"]
        runs = len(world.client.workflows.list_runs("digits-lifecycle"))
        writes = [("PUT", f"models/{model}/aliases/production", {"version": 1}),
                  ("PUT", "deployments/digits/traffic", {"traffic": None}),
                  ("POST", "pipelines/digits-lifecycle/runs", {}),
                  ("POST", f"jobs/{running['id']}/cancel", None),
                  ("POST", "metrics/alerts/evaluate", None)]
        statuses = page.evaluate(
            """async (writes) => Promise.all(writes.map(async ([method, path, body]) =>
                 (await fetch(`/api/v1/projects/demo/${path}`, {method,
                   headers: {'Content-Type': 'application/json',
                             Authorization: 'Bearer ' + sessionStorage.getItem('modelyard.token')},
                   body: body === null ? undefined : JSON.stringify(body)})).status))""", writes)
        assert statuses == [403] * len(writes)
        assert world.client.registry.resolve(f"{model}@production")["version"] == before
        assert world.client.serving.get("digits")["traffic"] == split
        assert len(world.client.workflows.list_runs("digits-lifecycle")) == runs
        assert world.client.training.get(running["id"])["state"] in ("queued", "scheduled",
                                                                    "running")
    finally:
        world.client.training.cancel(running["id"])
    page.close()



def test_lists_load_one_page_at_a_time(browser: Any, world: World) -> None:
    made = {world.client.registry.create_run("paging", {"i": i})["id"] for i in range(60)}
    page = signed_in(browser, world, world.admin)
    visit(page, world, "runs")
    page.fill("input[name=experiment]", "paging")
    page.click(".page form.inline button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('.page tbody tr').length === 50")
    first = {a.inner_text() for a in page.query_selector_all(".page tbody tr td:first-child a")}
    page.click("[data-testid=next-page]")
    page.wait_for_function("() => document.querySelectorAll('.page tbody tr').length === 10")
    second = {a.inner_text() for a in page.query_selector_all(".page tbody tr td:first-child a")}
    assert first | second == made and not first & second
    assert page.is_disabled("[data-testid=next-page]")
    page.close()

def test_a_bad_token_is_refused_at_sign_in(browser: Any, world: World) -> None:
    page = browser.new_page()
    page.goto(f"{world.url}/ui/")
    page.fill("[data-testid=token]", "myd_not-a-token")
    page.click("form[data-testid=signin] button[type=submit]")
    page.wait_for_function("() => document.querySelector('[data-testid=signin] .error').textContent")
    assert "not accepted" in page.inner_text("[data-testid=signin] .error")
    assert page.evaluate("sessionStorage.getItem('modelyard.token')") is None
    page.close()

