"""The controller without running jobs (scheduler off): what it asks, submits and recovers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.hpo.controller import HpoController
from modelyard.hpo.models import TrialState
from modelyard.sdk.client import Client
from modelyard.server.platform import Platform
from tests.conftest import Team


@pytest.fixture
def client(api: TestClient, team: Team) -> Client:
    return Client(token=team.admin, project="alpha", http=api)


@pytest.fixture
def platform(api: TestClient) -> Platform:
    return api.app.state.platform  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def study(client: Client) -> dict[str, Any]:
    client.datasets.import_builtin("digits", "sklearn:digits")
    snap = client.datasets.snapshot("digits")["id"]
    return client.hpo.create(
        "durable", trainer="digits-cnn", dataset_snapshot=snap, objective="val_accuracy",
        search_space={"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}},
        n_trials=3, max_parallel=2, sampler={"kind": "random", "seed": 0},
        hyperparameters={"epochs": 1})


def _trial_jobs(client: Client) -> list[dict[str, Any]]:
    return [j for j in client.training.list(limit=100)["items"]
            if j["name"].startswith("durable-trial-")]


def test_the_controller_keeps_max_parallel_trial_jobs_and_stops_at_the_budget(
        client: Client, platform: Platform, study: dict[str, Any]) -> None:
    platform.hpo.tick()
    platform.hpo.tick()
    trials = client.hpo.trials("durable")
    assert [t["state"] for t in trials] == ["running", "running"]
    jobs = _trial_jobs(client)
    assert sorted(j["id"] for j in jobs) == sorted(t["job_id"] for t in trials)
    assert all(j["hyperparameters"]["lr"] == t["params"]["lr"] and
               j["hyperparameters"]["epochs"] == 1
               for j, t in zip(sorted(jobs, key=lambda j: j["name"]), trials, strict=True))
    for t in trials:  # jobs ended by someone else end their trials, and free a slot
        client.training.cancel(t["job_id"])
    platform.hpo.tick()
    trials = client.hpo.trials("durable")
    assert [t["state"] for t in trials] == ["cancelled", "cancelled", "running"]
    client.training.cancel(trials[2]["job_id"])
    platform.hpo.tick()
    done = client.hpo.get("durable")
    assert done["state"] == "completed"
    assert len(client.hpo.trials("durable")) == 3
    assert done["best"] is None and "no trial completed" in done["message"]


def test_a_restart_reattaches_unrecorded_jobs_and_drops_unrecorded_asks(
        client: Client, platform: Platform, study: dict[str, Any]) -> None:
    hpo = platform.hpo
    hpo.tick()
    first = client.hpo.trials("durable")
    # A crash after a job was submitted but before its id was recorded ...
    hpo.store.update_trial(first[1]["id"], None, state=TrialState.pending, job_id=None)
    # ... and one after Optuna was asked but before the trial was recorded.
    ostudy = hpo.controller.optuna_study(hpo.store.get_study("alpha", "durable"))
    orphan = ostudy.ask()
    hpo.controller.reconcile()  # what a new server does first
    hpo.tick()
    trials = client.hpo.trials("durable")
    assert [t["job_id"] for t in trials] == [t["job_id"] for t in first]
    assert len(_trial_jobs(client)) == 2  # nothing submitted twice
    frozen = hpo.controller.storage.get_trial(orphan._trial_id)
    assert frozen.state.name == "FAIL"  # the unrecorded ask does not count


def test_stop_cancels_the_active_trials_jobs(
        client: Client, platform: Platform, study: dict[str, Any]) -> None:
    platform.hpo.tick()
    job_id = client.hpo.trials("durable")[0]["job_id"]
    assert client.hpo.should_prune(job_id) is False  # what a trainer may ask between epochs
    stopped = client.hpo.stop("durable")
    assert stopped["state"] == "stopped"
    assert client.hpo.should_prune(job_id) is True
    assert {j["state"] for j in _trial_jobs(client)} == {"cancelled"}
    platform.hpo.tick()  # a stopped study starts nothing more
    assert [t["state"] for t in client.hpo.trials("durable")] == ["cancelled", "cancelled"]


@pytest.mark.parametrize("sampler", [{"kind": "random", "seed": 0},
                                     {"kind": "tpe", "seed": 0, "n_startup_trials": 1}])
def test_a_restarted_controller_asks_new_parameters_not_the_first_trials_again(
        client: Client, platform: Platform, sampler: dict[str, Any]) -> None:
    client.datasets.import_builtin("digits", "sklearn:digits")
    client.hpo.create(
        "seeded", trainer="digits-cnn", dataset_snapshot=client.datasets.snapshot("digits")["id"],
        objective="val_accuracy", n_trials=4, max_parallel=2, sampler=sampler,
        search_space={"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}},
        hyperparameters={"epochs": 1})
    hpo = platform.hpo
    hpo.tick()  # trials 0 and 1 run
    first = client.hpo.trials("seeded")
    # The server goes away while they run; a new one builds its controller (and the sampler)
    # afresh from the stored spec.
    hpo.controller = HpoController(hpo)
    hpo.controller.reconcile()
    for t in first:
        client.training.cancel(t["job_id"])
    hpo.tick()
    trials = client.hpo.trials("seeded")
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    lrs = [t["params"]["lr"] for t in trials]
    assert len(set(lrs)) == 4, lrs  # trials 2 and 3 are not trials 0 and 1 again
