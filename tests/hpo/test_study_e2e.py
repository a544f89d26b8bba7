"""A real study on digits-cnn through a live server: trials are jobs, ASHA prunes, the best
trial is linked to the study, and a restarted server finishes with exactly the budget."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.errors import AlreadyExists
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests._servers.ports import free_port
from tests.cli.runner import run
from tests.training._live import serve

pytestmark = pytest.mark.e2e

EPOCHS = 30
SPACE = {"lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True}}
# Bad regions at both ends; the trainer's default lr (0.01) is one of the grid's points.
GRID = {"lr": {"type": "categorical", "choices": [1e-5, 1e-3, 0.01, 0.05, 1.0]}}


def study_spec(snap: str, name: str, n_trials: int, **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name, "trainer": "digits-cnn", "dataset_snapshot": snap,
        "search_space": SPACE, "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "sampler": {"kind": "tpe", "seed": 7, "n_startup_trials": 3},
        "pruner": {"kind": "asha", "min_resource": 1, "reduction_factor": 3},
        "n_trials": n_trials, "max_parallel": 2, "hyperparameters": {"epochs": EPOCHS},
        "resources": {"cpu": 0.5, "memory_mb": 512}, "best_alias": "tuned",
    }
    spec.update(over)
    return spec


def _client(s: Settings) -> Client:
    token = s.resolved_admin_token_file.read_text().strip()
    return Client(s.resolved_public_url, token=token, project="alpha")


def _snapshot(c: Client) -> str:
    with contextlib.suppress(AlreadyExists):  # the module's server is shared by its tests
        c.create_project("alpha")
    c.datasets.import_builtin("digits", "sklearn:digits")
    return str(c.datasets.snapshot("digits")["id"])


def _most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most jobs whose [started_at, finished_at] overlap at one instant."""
    events: list[tuple[datetime, int]] = []
    for j in jobs:
        if j["started_at"]:
            events.append((datetime.fromisoformat(j["started_at"]), 1))
            events.append((datetime.fromisoformat(j["finished_at"]), -1))
    most = now = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        now += delta
        most = max(most, now)
    return most


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("hpo-e2e") / "home"
    with live_server(Settings(home=home, background=True)) as s:
        yield s


def test_asha_prunes_bad_trials_respects_parallelism_and_beats_the_defaults(
        server: Settings) -> None:
    with _client(server) as c:
        snap = _snapshot(c)
        default = c.training.submit("digits-cnn", snap, hyperparameters={"epochs": EPOCHS},
                                    resources={"cpu": 0.5, "memory_mb": 512})
        made = c.hpo.create_from_spec(study_spec(
            snap, "digits-lr", n_trials=5, search_space=GRID, sampler={"kind": "grid", "seed": 7}))
        assert made["state"] == "running"
        done = c.hpo.wait("digits-lr", timeout=400)
        trials = c.hpo.trials("digits-lr")
        default_acc = c.training.wait(default["id"], timeout=120)["progress"]["val_accuracy"]
        jobs = [c.training.get(t["job_id"]) for t in trials]

    assert done["state"] == "completed", done
    assert [t["number"] for t in trials] == list(range(5))
    states = [t["state"] for t in trials]
    assert "pruned" in states, trials
    assert all(s in ("completed", "pruned") for s in states), trials
    for t, job in zip(trials, jobs, strict=True):
        if t["state"] == "pruned":  # its job was stopped, which freed its resources
            assert job["state"] == "cancelled"
        assert job["experiment"] == "digits-lr"  # the trials' runs are grouped
    # the pruner's decision reached running trials: some stopped before their last epoch
    assert any(t["metrics"]["step"] < EPOCHS - 1 for t in trials if t["state"] == "pruned")
    assert _most_at_once(jobs) <= 2
    best = done["best"]
    assert best["value"] == max(t["value"] for t in trials if t["state"] == "completed")
    assert best["value"] >= default_acc
    assert best["params"]["lr"] == trials[best["number"]]["params"]["lr"]
    mv = done["best_model_version"]
    assert mv["job_id"] == best["job_id"]
    with _client(server) as c:
        assert c.registry.resolve("digits-cnn@tuned")["id"] == mv["id"]
        lineage = c.registry.lineage(f"study:{made['id']}", direction="downstream")
    assert f"digits-cnn@{mv['version']}" in json.dumps(lineage)  # study -> best model version

    env: dict[str, str | None] = {
        "MODELYARD_URL": server.resolved_public_url, "MODELYARD_PROJECT": "alpha",
        "MODELYARD_TOKEN": server.resolved_admin_token_file.read_text().strip()}
    shown = run(["hpo", "show", "digits-lr"], env)
    assert shown.code == 0, shown.stderr
    assert "pruned" in shown.stdout and "completed" in shown.stdout
    assert f"best so far: trial {best['number']}" in shown.stdout
    listed = run(["hpo", "list"], env)
    assert listed.code == 0 and "digits-lr" in listed.stdout and "5/5" in listed.stdout


def test_a_restarted_server_finishes_the_study_with_exactly_the_budget(tmp_path: Path) -> None:
    port = free_port()
    s = Settings(home=tmp_path / "home", background=True, port=port,
                 public_url=f"http://127.0.0.1:{port}")
    n_trials = 3
    with serve(s), _client(s) as c:
        snap = _snapshot(c)
        c.hpo.create_from_spec(study_spec(snap, "restart", n_trials=n_trials,
                                          pruner={"kind": "none"}, hyperparameters={"epochs": 5},
                                          sampler={"kind": "random", "seed": 1}))
        deadline = time.monotonic() + 120
        while sum(1 for t in c.hpo.trials("restart") if t["job_id"]) < 2:
            assert time.monotonic() < deadline, "no trial started"
            time.sleep(0.2)
    # the server (and its controller) went away mid-study; a new one picks the study up
    with serve(s), _client(s) as c:
        done = c.hpo.wait("restart", timeout=300)
        trials = c.hpo.trials("restart")
        jobs = c.training.list(limit=100)["items"]
    assert done["state"] == "completed", done
    assert [t["number"] for t in trials] == list(range(n_trials))
    assert all(t["state"] == "completed" for t in trials), trials
    trial_jobs = [j for j in jobs if j["name"].startswith("restart-trial-")]
    assert sorted(j["id"] for j in trial_jobs) == sorted(t["job_id"] for t in trials)


def test_the_cli_creates_refuses_and_stops_studies(server: Settings, tmp_path: Path) -> None:
    import yaml

    env: dict[str, str | None] = {
        "MODELYARD_URL": server.resolved_public_url, "MODELYARD_PROJECT": "alpha",
        "MODELYARD_TOKEN": server.resolved_admin_token_file.read_text().strip()}
    with _client(server) as c:
        snap = _snapshot(c)
    spec_file = tmp_path / "study.yaml"
    bad = study_spec(snap, "cli-study", n_trials=0)
    spec_file.write_text(yaml.safe_dump(bad))
    refused = run(["hpo", "create", str(spec_file)], env)
    assert refused.code == 1 and "n_trials" in refused.err_text
    spec_file.write_text(yaml.safe_dump(study_spec(snap, "cli-study", n_trials=2)))
    made = run(["hpo", "create", str(spec_file)], env)
    assert made.code == 0, made.stderr
    assert "created study cli-study" in made.stdout
    stopped = run(["hpo", "stop", "cli-study"], env)
    assert stopped.code == 0 and "stopped" in stopped.stdout
    shown = run(["--json", "hpo", "show", "cli-study"], env)
    got = json.loads(shown.stdout)
    assert got["study"]["state"] == "stopped"
    assert all(t["state"] == "cancelled" for t in got["trials"])


def test_a_pruned_trial_stops_at_the_epoch_boundary_where_it_was_pruned(server: Settings) -> None:
    epochs, warmup = 20, 2
    with _client(server) as c:
        snap = _snapshot(c)
        # The good learning rate runs first (grid order of seed 1), then two that diverge;
        # the median pruner may stop those from epoch index `warmup` on.
        c.hpo.create_from_spec(study_spec(
            snap, "prompt-prune", n_trials=3, max_parallel=1,
            search_space={"lr": {"type": "categorical", "choices": [0.005, 1.0, 0.9]}},
            sampler={"kind": "grid", "seed": 1}, hyperparameters={"epochs": epochs},
            pruner={"kind": "median", "n_startup_trials": 1, "n_warmup_steps": warmup},
            best_alias=None))
        done = c.hpo.wait("prompt-prune", timeout=300)
        trials = c.hpo.trials("prompt-prune")
        jobs = {t["number"]: c.training.get(t["job_id"]) for t in trials}
        logged = {t["number"]: c.registry.get_metric_series(t["run_id"], "val_accuracy")
                  for t in trials}

    assert done["state"] == "completed", done
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned, trials
    for t in pruned:
        decided = t["last_step"]  # the epoch whose value the pruner stopped it on
        assert decided >= warmup
        last_logged = t["metrics"]["step"]  # the last epoch the trial ran and logged
        assert decided <= last_logged <= decided + 1, t  # stopped within one epoch
        assert last_logged < epochs - 1  # it did not run on to the end
        assert jobs[t["number"]]["state"] == "cancelled"  # its slot was freed
        assert len(logged[t["number"]]) == last_logged + 1  # epochs run = points logged
