"""A study that cannot run is refused with the reason, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.sdk.client import Client
from tests.conftest import Team, bearer

PATH = "/api/v1/projects/alpha/hpo/studies"


@pytest.fixture
def snap(api: TestClient, team: Team) -> str:
    client = Client(token=team.admin, project="alpha", http=api)
    client.datasets.import_builtin("digits", "sklearn:digits")
    return str(client.datasets.snapshot("digits")["id"])


def spec(snap: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "tune", "trainer": "digits-cnn", "dataset_snapshot": snap,
        "search_space": {"lr": {"type": "float", "low": 1e-4, "high": 0.5, "log": True},
                         "batch_size": {"type": "categorical", "choices": [32, 64]}},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "n_trials": 4, "max_parallel": 2, "hyperparameters": {"epochs": 2},
    }
    body.update(over)
    return body


BAD = [
    ({"search_space": {"lr": {"type": "float", "low": 0.5, "high": 0.1}}}, "greater than high"),
    ({"search_space": {"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}},
     "low > 0"),
    ({"search_space": {"batch_size": {"type": "categorical", "choices": []}}}, "non-empty"),
    ({"search_space": {"dropout": {"type": "float", "low": 0, "high": 0.5}}},
     "no hyperparameter 'dropout'"),
    ({"search_space": {"lr": {"type": "float", "low": 1e-4, "high": 5.0}}}, "not valid"),
    ({"search_space": {"channels": {"type": "int", "low": 4, "high": 8,
                                    "condition": {"param": "nope", "values": [1]}}}},
     "not a categorical"),
    ({"objective": {"metric": "val_loss"}}, "does not report 'val_loss'"),
    ({"n_trials": 0}, "n_trials"),
    ({"max_parallel": 0}, "max_parallel"),
    ({"sampler": {"kind": "grid"}}, "grid sampler needs a discrete space"),
    ({"sampler": {"kind": "grid"}, "n_trials": 3,
      "search_space": {"batch_size": {"type": "categorical", "choices": [32, 64]}}},
     "the grid has 2 points"),
    ({"trainer": "no-such-trainer"}, "unknown trainer"),
    ({"hyperparameters": {"lr": 0.1}}, "both fixed"),
    ({"dataset_snapshot": "snap_missing"}, "no dataset snapshot"),
]


@pytest.mark.parametrize(("change", "reason"), BAD, ids=[r for _, r in BAD])
def test_a_bad_study_is_400_with_the_reason_and_nothing_is_stored(
        api: TestClient, team: Team, snap: str, change: dict[str, Any], reason: str) -> None:
    h = bearer(team.editor)
    r = api.post(PATH, json=spec(snap, **change), headers=h)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]["message"]
    assert api.get(PATH, headers=h).json() == []


def test_a_good_study_is_created_and_listed_with_conditional_params(
        api: TestClient, team: Team, snap: str) -> None:
    h = bearer(team.editor)
    space = {"batch_size": {"type": "categorical", "choices": [32, 64]},
             "channels": {"type": "int", "low": 4, "high": 32, "log": True,
                          "condition": {"param": "batch_size", "values": [64]}}}
    r = api.post(PATH, json=spec(snap, search_space=space, sampler={"kind": "random"}),
                 headers=h)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["state"] == "running" and made["best"] is None
    assert [s["name"] for s in api.get(PATH, headers=h).json()] == ["tune"]
    again = api.post(PATH, json=spec(snap), headers=h)
    assert again.status_code == 409
    assert api.get(f"{PATH}/tune/trials", headers=h).json() == []


def test_a_viewer_cannot_create_or_stop_a_study(api: TestClient, team: Team, snap: str) -> None:
    r = api.post(PATH, json=spec(snap), headers=bearer(team.viewer))
    assert r.status_code == 403, r.text
    assert api.post(PATH, json=spec(snap), headers=bearer(team.editor)).status_code == 201
    assert api.post(f"{PATH}/tune/stop", headers=bearer(team.viewer)).status_code == 403
    assert api.get(f"{PATH}/tune", headers=bearer(team.viewer)).status_code == 200
    assert api.get(f"{PATH}/tune", headers=bearer(team.outsider)).status_code == 404  # alpha is hidden
    stopped = api.post(f"{PATH}/tune/stop", headers=bearer(team.editor))
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    assert api.post(f"{PATH}/tune/stop", headers=bearer(team.editor)).status_code == 409
