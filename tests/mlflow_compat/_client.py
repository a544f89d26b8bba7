"""Ordinary MLflow code, run as its own process by test_mlflow_client.py with only
MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN pointing it at modelyard. Prints what it made
as one JSON line; the test checks it through modelyard's own API."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out: dict[str, object] = {}
client = MlflowClient()
tmp = Path(tempfile.mkdtemp())

mlflow.set_experiment("mlflow-compat")
with mlflow.start_run(run_name="manual") as run:
    rid = run.info.run_id
    mlflow.log_param("lr", 0.1)
    mlflow.log_params({"layers": 2, "optimizer": "adam"})
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.set_tag("team", "vision")
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
    client.log_batch(rid, metrics=[Metric("val_loss", 0.5, int(time.time() * 1000), 0),
                                   Metric("val_loss", 0.4, int(time.time() * 1000), 1)],
                     params=[Param("batch_size", "32")], tags=[RunTag("stage", "dev")])
    (tmp / "notes.txt").write_text("hello from mlflow")
    mlflow.log_artifact(str(tmp / "notes.txt"), "reports")
    mlflow.log_dict({"seed": 0}, "config.json")
out["manual"] = rid
got = client.get_run(rid)
out["manual_status"] = got.info.status
out["manual_params"] = got.data.params
out["loss_history"] = [(m.step, m.value) for m in client.get_metric_history(rid, "loss")]
out["listed"] = sorted(f.path for f in client.list_artifacts(rid))
out["listed_reports"] = [f.path for f in client.list_artifacts(rid, "reports")]
local = client.download_artifacts(rid, "reports/notes.txt", str(tmp / "dl"))
out["downloaded"] = Path(local).read_text()
out["searched"] = [r.info.run_id for r in client.search_runs(
    [got.info.experiment_id], "params.optimizer = 'adam' and attributes.status = 'FINISHED'")]
out["experiment"] = client.get_experiment_by_name("mlflow-compat").experiment_id

mlflow.autolog()
X, y = load_iris(return_X_y=True)
with mlflow.start_run(run_name="sklearn") as run:
    LogisticRegression(max_iter=300).fit(X, y)
out["sklearn"] = run.info.run_id

torch.manual_seed(0)
xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
net = torch.nn.Linear(4, 3)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
with mlflow.start_run(run_name="torch") as run:
    mlflow.log_params({"epochs": 5, "torch_lr": 0.1})
    for epoch in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
        mlflow.log_metric("train_loss", loss.item(), step=epoch)
    mlflow.pytorch.log_model(net, name="model", input_example=X[:2].astype("float32"),
                             pip_requirements=["torch"])
out["torch"] = run.info.run_id

mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris-torch")
client.set_registered_model_alias("iris-torch", "champion", mv.version)
out["version"] = int(mv.version)
out["by_alias"] = client.get_model_version_by_alias("iris-torch", "champion").version
loaded = mlflow.pytorch.load_model("models:/iris-torch@champion")
out["loaded_matches"] = bool(torch.equal(loaded(xt).argmax(1), net(xt).argmax(1)))

try:
    client.delete_run(rid)
    out["unsupported"] = None
except MlflowException as e:
    out["unsupported"] = {"error_code": e.error_code, "message": e.message}

print("RESULT " + json.dumps(out))
sys.stdout.flush()
