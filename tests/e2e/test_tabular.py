"""Tabular data end to end through the real CLI against a live server (issue 20 item 8):
sklearn's breast_cancer (classes) and diabetes (a number), written to CSV, imported,
snapshotted, trained by the built-in `tabular-mlp` under a model name of their own, deployed,
asked with named features, given feedback and scored online (accuracy; MAE and RMSE)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.settings import Settings
from tests._servers.live import live_server
from tests.cli.runner import run

pytestmark = pytest.mark.e2e

Env = dict[str, str | None]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = tmp_path_factory.mktemp("tabular-e2e") / "home"
    with live_server(Settings(home=home, background=True)) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        base: Env = {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
                     "MODELYARD_PROJECT": None}
        assert cli(base, "project", "create", "tabular").code == 0
        yield {**base, "MODELYARD_PROJECT": "tabular"}


def cli(env: Env, *args: str) -> Any:
    out = run(list(args), env)
    assert out.code == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


def cli_json(env: Env, *args: str) -> Any:
    return json.loads(cli(env, "--json", *args).stdout)


def write_csv(path: Path, name: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The sklearn data set as CSV with an `id` column; returns (features, rows)."""
    import sklearn.datasets as skd

    d = getattr(skd, f"load_{name}")()
    feats = ["f_" + "".join(c if c.isalnum() else "_" for c in f) for f in d.feature_names]
    rows = []
    for i, (x, t) in enumerate(zip(d.data, d.target, strict=True)):
        row: dict[str, Any] = {"id": i, **{f: float(v) for f, v in zip(feats, x, strict=True)}}
        row["target"] = str(d.target_names[int(t)]) if name == "breast_cancer" else float(t)
        rows.append(row)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["id", *feats, "target"])
        w.writeheader()
        w.writerows(rows)
    return feats, rows


def lifecycle(env: Env, tmp: Path, name: str, target_type: str, epochs: int,
              model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """import -> snapshot -> train -> deploy -> predict 60 rows; (rows, predictions, job)."""
    feats, rows = write_csv(tmp / f"{name}.csv", name)
    config = {"columns": {"id": "int", **{f: "float" for f in feats}, "target": target_type},
              "target": "target", "id": "id"}
    cli(env, "dataset", "create", name, "--type", "tabular", "--config", json.dumps(config))
    cli(env, "dataset", "commit", name, str(tmp / f"{name}.csv"), "-m", "from sklearn")
    stats = cli_json(env, "dataset", "stats", name)["summary"]["columns"]
    assert stats[feats[0]]["count"] == len(rows) and stats[feats[0]]["nulls"] == 0
    snap = cli_json(env, "dataset", "snapshot", name, "--seed", "0")["id"]
    job = cli_json(env, "train", "submit", "tabular-mlp", "--snapshot", snap,
                   "-P", f"epochs={epochs}", "--model-name", model)
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = cli_json(env, "train", "show", job["id"])
    assert job["state"] == "succeeded", cli(env, "train", "logs", job["id"]).stdout[-3000:]
    assert job["hyperparameters"]["model_name"] == model
    version = cli_json(env, "model", "show", f"{model}@1")
    assert version["preprocessing"]["kind"] == "tabular"
    assert [f["name"] for f in version["preprocessing"]["features"]] == feats  # no id, no target
    cli(env, "deploy", "create", name, f"{model}@1", "--warm")
    sample = rows[::len(rows) // 60][:60]
    inputs = tmp / f"{name}-inputs.json"
    inputs.write_text(json.dumps([{f: r[f] for f in feats} for r in sample]))
    preds = cli_json(env, "deploy", "predict", name, f"@{inputs}")
    assert len(preds) == len(sample)
    feedback = tmp / f"{name}-feedback.json"
    feedback.write_text(json.dumps({p["request_id"]: str(r["target"])
                                    for p, r in zip(preds, sample, strict=True)}))
    assert cli_json(env, "metrics", "feedback", f"@{feedback}")["accepted"] == len(sample)
    return sample, preds, job["id"]


def online(env: Env, metric: str, deployment: str) -> float:
    out = cli_json(env, "metrics", "query", metric, "--since", "1h", "--step", "3600",
                   "--deployment", deployment)
    values = [p["value"] for s in out["series"] for p in s["points"] if p["value"] is not None]
    assert len(values) == 1, out
    return float(values[0])


def test_breast_cancer_classes_from_csv_to_online_accuracy(env: Env, tmp_path: Path) -> None:
    sample, preds, _ = lifecycle(env, tmp_path, "breast_cancer", "string", 15, "breast-cancer")
    assert {p["label"] for p in preds} <= {"malignant", "benign"}
    right = sum(p["label"] == r["target"] for p, r in zip(preds, sample, strict=True))
    accuracy = online(env, "accuracy", "breast_cancer")
    assert accuracy == pytest.approx(right / len(sample))
    assert accuracy > 0.85
    bad = run(["deploy", "predict", "breast_cancer", json.dumps([{"f_mean_radius": 1.0}])], env)
    assert bad.code == 1 and "f_mean_texture" in bad.err_text and "missing" in bad.err_text


def test_diabetes_number_from_csv_to_online_mae(env: Env, tmp_path: Path) -> None:
    sample, preds, _ = lifecycle(env, tmp_path, "diabetes", "float", 40, "diabetes")
    errors = [abs(float(p["label"]) - r["target"]) for p, r in zip(preds, sample, strict=True)]
    mae = online(env, "mae", "diabetes")
    assert mae == pytest.approx(sum(errors) / len(errors), rel=1e-3)
    assert mae < 70  # predicting the mean gives about 65; a fit model does better
    assert online(env, "rmse", "diabetes") >= mae
