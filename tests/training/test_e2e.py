"""Real training through a live server: digits-cnn to a served-quality ONNX model, and DDP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from modelyard import preprocessing
from modelyard.core.blobs import ContentStore, open_blob_store
from modelyard.core.settings import Settings
from modelyard.runtime.data import load_split_arrays
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.training._live import admin_client, digits_snapshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("training-e2e") / "home"
    with live_server(Settings(home=home, background=True)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: Settings) -> Iterator[Client]:
    yield from admin_client(server)


@pytest.fixture(scope="module")
def snap(client: Client) -> dict[str, Any]:
    return digits_snapshot(client)


def onnx_accuracy(server: Settings, version: dict[str, Any], snap: dict[str, Any],
                  column: str = "image") -> float:
    import onnxruntime as ort

    cas = ContentStore(open_blob_store(server))
    session = ort.InferenceSession(cas.get(version["artifacts"]["model.onnx"]),
                                   providers=["CPUExecutionProvider"])
    pre = preprocessing.build(version["preprocessing"])
    rows, _ = load_split_arrays(snap, "validation")
    (logits,) = session.run(["logits"], {"input": pre.transform([r[column] for r in rows])})
    predicted = [p["label"] for p in pre.decode(logits)]
    truth = [str(r["labels"][0]) if "labels" in r else str(r["label"]) for r in rows]
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


def test_digits_cnn_trains_a_model_version_whose_onnx_predicts_well(
        server: Settings, client: Client, snap: dict[str, Any]) -> None:
    job = client.training.submit("digits-cnn", snap["id"], hyperparameters={"epochs": 6})
    logs = "".join(client.training.logs(job["id"], follow=True))
    done = client.training.wait(job["id"], timeout=120)
    assert done["state"] == "succeeded", logs
    assert "epoch 6/6" in logs
    assert done["progress"]["val_accuracy"] > 0.9
    assert done["checkpoint"] is not None
    version = done["model_version"]
    assert version["job_id"] == job["id"]
    assert version["run_id"] == done["run_id"]
    assert version["dataset_snapshot_id"] == snap["id"]
    assert version["code_hash"] == done["code_hash"]
    assert version["signature"]["inputs"][0]["name"] == "input"
    assert version["params"]["epochs"] == 6
    assert onnx_accuracy(server, version, snap) > 0.85
    # Reading the log from an offset continues where the reader stopped.
    tail = "".join(client.training.logs(job["id"], offset=len(logs.encode()) - 20))
    assert logs.endswith(tail)


def test_two_ddp_workers_reach_the_accuracy_band_of_one(
        server: Settings, client: Client, snap: dict[str, Any]) -> None:
    # Half a CPU per DDP worker, so both jobs fit the 2-CPU test machine side by side.
    jobs = [client.training.submit("digits-cnn", snap["id"], hyperparameters={"epochs": 5},
                                   resources={"cpu": 1 / w, "workers": w}) for w in (1, 2)]
    single, ddp = (client.training.wait(j["id"], timeout=180) for j in jobs)
    ddp_logs = "".join(client.training.logs(ddp["id"]))
    assert single["state"] == ddp["state"] == "succeeded", ddp_logs
    assert "rank 1/2" in ddp_logs
    assert ddp["progress"]["val_accuracy"] > 0.9
    assert abs(ddp["progress"]["val_accuracy"] - single["progress"]["val_accuracy"]) < 0.06
    assert onnx_accuracy(server, ddp["model_version"], snap) > 0.85



def test_intent_classifier_trains_on_text_intents_and_serves_through_onnx(
        server: Settings, client: Client) -> None:
    client.datasets.import_builtin("intents", "chatterbot:intents")
    snap = client.datasets.snapshot("intents")
    job = client.training.submit("intent-classifier", snap["id"], hyperparameters={"epochs": 5})
    done = client.training.wait(job["id"], timeout=120)
    assert done["state"] == "succeeded", "".join(client.training.logs(job["id"]))
    version = done["model_version"]
    assert version["preprocessing"]["kind"] == "text"
    assert done["progress"]["val_accuracy"] > 0.6
    assert abs(onnx_accuracy(server, version, snap, "text")
               - done["progress"]["val_accuracy"]) < 0.02
