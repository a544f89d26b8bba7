"""Built-in pipelines (listed in `loader.BUILTINS`)."""

from __future__ import annotations

from typing import Any

from modelyard.workflows import kinds
from modelyard.workflows.dsl import Pipeline


def _first_digit() -> list[list[float]]:
    from sklearn.datasets import load_digits

    return [[float(v) * 15 for v in row] for row in load_digits().images[0]]


def digits_lifecycle() -> Pipeline:
    """sklearn digits → dataset → snapshot → digits-cnn job → its model version → alias
    `production` → deployment `digits` → one prediction → the deployment's request count, gated on ≥ 1."""
    steps = [
        kinds.import_dataset("import_digits", "digits", "sklearn:digits"),
        kinds.dataset_snapshot("snapshot", "digits", after="import_digits", seed=0),
        kinds.training_job("train", "snapshot", "digits-cnn", {"epochs": 3}),
        kinds.model_version("version", "train"),
        kinds.move_alias("promote", "version", "production"),
        kinds.deploy("deploy", "promote", "digits"),
        kinds.predict("predict", "deploy", [_first_digit()]),
        kinds.query_metrics("request_metrics", "predict_done", "count", window_s=3600),
        kinds.gate("served", "request_metrics", "value", ">=", 1),
    ]
    return Pipeline("digits-lifecycle", [*steps[:-2], _predicted(), *steps[-2:]],
                    params={"hyperparameters": {"epochs": 3}},
                    description=digits_lifecycle.__doc__ or "")


def _predicted() -> Any:
    """`predict_done`: hands the deployment on once the prediction went through."""
    from modelyard.workflows.dsl import step

    @step(name="predict_done", executor="thread")
    def predict_done(deploy: dict[str, Any], predict: dict[str, Any]) -> dict[str, Any]:
        return {**deploy, "predictions": predict.get("predictions", [])}

    return predict_done


def continuous_training() -> Pipeline:
    """On a new commit of `digits`: snapshot → a small HPO study (ASHA over the learning rate)
    → its best model version → evaluate against `production` → gate (only a better model goes
    on) → canary on deployment `digits` → promote to `production` or roll back on live metrics
    (`canary_observe_s`, default 300 s).

    Register with an event trigger: `schedule("continuous-training", event="dataset.commit",
    match={"dataset": "digits"})`. Pipeline parameters `search_space` and `hyperparameters`
    override the study's.
    """
    return Pipeline("continuous-training", [
        kinds.dataset_snapshot("snapshot", "digits", seed=0),
        kinds.hpo_study("tune", "snapshot", "digits-cnn", CT_SEARCH_SPACE,
                        metric="val_accuracy", n_trials=3, max_parallel=2,
                        hyperparameters={"epochs": 3}),
        kinds.model_version("candidate", "tune"),
        kinds.evaluate("evaluate", "candidate", against="production", metric="val_accuracy"),
        kinds.gate("better", "evaluate", "better", "==", 1),
        kinds.canary("release", "candidate", "digits", alias="production", percent=10,
                     after="better"),
    ], params={"hyperparameters": {"epochs": 3}, "search_space": CT_SEARCH_SPACE,
               "canary_observe_s": 300.0},
        description=continuous_training.__doc__ or "")


CT_SEARCH_SPACE = {"lr": {"type": "float", "low": 0.003, "high": 0.05, "log": True}}
