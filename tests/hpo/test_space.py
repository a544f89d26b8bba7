"""Every sampler draws from the declared space: ranges, log scale, steps, conditions."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.hpo import _optuna, _space
from modelyard.hpo.models import StudySpec

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
    "channels": {"type": "int", "low": 4, "high": 32, "step": 4},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "momentum": {"type": "float", "low": 0.5, "high": 0.9, "step": 0.1,
                 "condition": {"param": "optimizer", "values": ["sgd"]}},
}


@pytest.mark.parametrize("kind", ["random", "tpe", "cmaes"])
def test_samplers_respect_ranges_and_conditions(tmp_path: Path, kind: str) -> None:
    spec = StudySpec.model_validate({
        "name": "s", "code": {"digest": "0" * 64}, "search_space": SPACE,
        "objective": {"metric": "loss", "direction": "minimize"}, "n_trials": 12,
        "sampler": {"kind": kind, "seed": 1, "n_startup_trials": 4}})
    storage = _optuna.open_storage("sqlite://", tmp_path)
    study = _optuna.load(storage, f"study-{kind}", spec, None)
    seen = set()
    for i in range(spec.n_trials):
        trial = study.ask()
        p = _space.suggest(trial, spec.search_space)
        assert 1e-5 <= p["lr"] <= 1.0
        assert p["channels"] in range(4, 33, 4)
        assert ("momentum" in p) == (p["optimizer"] == "sgd")
        if "momentum" in p:
            assert 0.5 <= p["momentum"] <= 0.9 + 1e-9
        seen.add(p["optimizer"])
        study.tell(trial, float(i))
    assert seen == {"adam", "sgd"}


def test_a_grid_sampler_walks_every_point_once(tmp_path: Path) -> None:
    space = {"lr": {"type": "categorical", "choices": [0.1, 0.01]},
             "channels": {"type": "int", "low": 8, "high": 16, "step": 8}}
    spec = StudySpec.model_validate({
        "name": "g", "code": {"digest": "0" * 64}, "search_space": space,
        "objective": {"metric": "loss"}, "n_trials": 4, "sampler": {"kind": "grid"}})
    assert _space.grid(spec.search_space) == {"lr": [0.1, 0.01], "channels": [8, 16]}
    study = _optuna.load(_optuna.open_storage("sqlite://", tmp_path), "grid", spec, None)
    points = set()
    for _ in range(4):
        trial = study.ask()
        p = _space.suggest(trial, spec.search_space)
        points.add((p["lr"], p["channels"]))
        study.tell(trial, 0.5)
    assert points == {(0.1, 8), (0.1, 16), (0.01, 8), (0.01, 16)}
