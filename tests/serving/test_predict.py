"""Predictions through the real registry and ONNX Runtime, over the JSON `/predict` route."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from modelyard.core.errors import InvalidArgument, NotFound, PermissionDenied
from modelyard.core.ids import utcnow
from modelyard.sdk.client import Client
from tests.conftest import Team, bearer
from tests.serving._digits import digits, expected_labels
from tests.serving.conftest import DigitsModel


def test_predict_gives_the_models_labels_for_raw_pixels(client: Client,
                                                        digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    d = digits()
    pixels = d.test_x[:120]
    got: list[str] = []
    for i in range(0, len(pixels), 40):
        out = client.serving.predict("digits", pixels[i:i + 40].tolist())
        assert out["model_version"] == digits_model.v1
        assert out["request_id"]
        got += [p["label"] for p in out["predictions"]]
        assert all(0 < p["confidence"] <= 1 for p in out["predictions"])
    assert got == expected_labels(digits_model.c1, pixels)
    assert np.mean(np.array(got) == d.test_y[:120].astype(str)) > 0.85


def test_predict_accepts_base64_png(client: Client, digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    image = digits().test_x[7]
    buf = io.BytesIO()
    Image.fromarray(image.astype(np.uint8), mode="L").save(buf, format="PNG")
    out = client.serving.predict("digits", [base64.b64encode(buf.getvalue()).decode()])
    assert [p["label"] for p in out["predictions"]] == expected_labels(digits_model.c1, image)


def test_a_pinned_version_is_served_when_asked(api: TestClient, client: Client,
                                               digits_model: DigitsModel) -> None:
    from modelyard.serving.runtime import ModelKey

    cache = api.app.state.platform.serving.cache  # type: ignore[attr-defined]
    v1, v2 = (ModelKey("alpha", "digits", v) for v in (digits_model.v1, digits_model.v2))
    client.serving.create("digits", "digits@production", pinned=True, warm=True)
    assert v1 in cache.loaded_keys() and cache.is_pinned(v1)
    pixels = digits().test_x[:50]
    out = client.serving.predict("digits", pixels.tolist(), version=digits_model.v2)
    assert out["model_version"] == digits_model.v2
    assert [p["label"] for p in out["predictions"]] == expected_labels(digits_model.c2, pixels)
    client.serving.update("digits", model_ref=f"digits@{digits_model.v2}")
    assert cache.is_pinned(v2) and not cache.is_pinned(v1)  # the old version may be evicted


def test_bad_inputs_get_4xx_with_the_reason(api: TestClient, client: Client,
                                            digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    with pytest.raises(NotFound, match="nope"):
        client.serving.predict("nope", [[0] * 8] * 8)
    with pytest.raises(InvalidArgument, match="shape"):
        client.serving.predict("digits", [[[0] * 7] * 7])
    with pytest.raises(InvalidArgument, match="0..255"):
        client.serving.predict("digits", [[[999] * 8] * 8])
    with pytest.raises(InvalidArgument, match="base64"):
        client.serving.predict("digits", ["not an image"])
    # a small PNG that claims a large image is refused before it is decoded
    buf = io.BytesIO()
    Image.new("L", (5000, 1)).save(buf, format="PNG")
    with pytest.raises(InvalidArgument, match="5000x1; send at most 4096"):
        client.serving.predict("digits", [base64.b64encode(buf.getvalue()).decode()])
    h = bearer(api.app.state.platform.settings.resolved_admin_token_file.read_text().strip())  # type: ignore[attr-defined]
    r = api.post("/api/v1/projects/alpha/deployments/digits/predict", content=b"{not json",
                 headers={**h, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"
    r = api.post("/api/v1/projects/alpha/deployments/digits/predict", json={"inputs": []},
                 headers=h)
    assert r.status_code == 400
    # one bad request in a batch does not fail the good ones
    good = client.serving.predict("digits", digits().test_x[:2].tolist())
    assert len(good["predictions"]) == 2


def test_deployment_settings_are_validated(client: Client, digits_model: DigitsModel) -> None:
    with pytest.raises(InvalidArgument, match="sum to 90"):
        client.serving.create("d", "digits@production", traffic={"1": 80, "2": 10})
    with pytest.raises(InvalidArgument, match="no version 9"):
        client.serving.create("d", "digits@production", traffic={"1": 90, "9": 10})
    with pytest.raises(NotFound):
        client.serving.create("d", "nomodel@production")
    with pytest.raises(InvalidArgument, match="MODEL@VERSION"):
        client.serving.create("d", "digits")
    assert client.serving.list() == []


def test_crud_and_traffic(client: Client, digits_model: DigitsModel) -> None:
    dep = client.serving.create("digits", "digits@production")
    assert dep["model"] == "digits" and dep["traffic"] is None
    dep = client.serving.set_traffic("digits", {"1": 50, "2": 50})
    assert dep["traffic"] == {"1": 50, "2": 50}
    seen = {client.serving.predict("digits", [digits().test_x[0].tolist()])["model_version"]
            for _ in range(40)}
    assert seen == {digits_model.v1, digits_model.v2}
    dep = client.serving.update("digits", model_ref="digits@2", traffic=None)
    assert dep["model_ref"] == "digits@2" and dep["traffic"] is None
    assert client.serving.predict("digits", [digits().test_x[0].tolist()])["model_version"] == 2
    assert [d["name"] for d in client.serving.list()] == ["digits"]
    kinds = [e["kind"] for e in client.serving.events("digits")]
    assert kinds == ["updated", "updated", "created"]
    client.serving.delete("digits")
    with pytest.raises(NotFound):
        client.serving.get("digits")


def test_viewer_predicts_but_cannot_deploy_and_outsider_sees_nothing(
        api: TestClient, team: Team, digits_model: DigitsModel) -> None:
    editor = Client(token=team.editor, project="alpha", http=api)
    editor.serving.create("digits", "digits@production")
    viewer = Client(token=team.viewer, project="alpha", http=api)
    out = viewer.serving.predict("digits", [digits().test_x[0].tolist()])
    assert len(out["predictions"]) == 1
    with pytest.raises(PermissionDenied):
        viewer.serving.create("other", "digits@production")
    with pytest.raises(PermissionDenied):
        viewer.serving.set_traffic("digits", {"1": 100})
    outsider = Client(token=team.outsider, project="alpha", http=api)
    with pytest.raises(NotFound):
        outsider.serving.predict("digits", [digits().test_x[0].tolist()])
    r = api.get("/v2/models/digits", headers={**bearer(team.outsider),
                                              "X-Modelyard-Project": "alpha"})
    assert r.status_code == 404
    r = api.get("/v2/models/digits", headers={"Authorization": "", "X-Modelyard-Project": "alpha"})
    assert r.status_code == 401


def test_predictions_are_counted_in_prometheus_and_the_metrics_store(
        api: TestClient, client: Client, digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    for _ in range(3):
        client.serving.predict("digits", digits().test_x[:4].tolist())
    text = api.get("/metrics").text
    assert ('modelyard_serving_requests_total{deployment="digits",outcome="ok",'
            'project="alpha",version="1"} 3.0') in text
    assert "modelyard_serving_batch_size_bucket" in text
    assert 'modelyard_serving_queue_depth{model="digits",project="alpha",version="1"}' in text
    now = utcnow()
    out = client.metrics.query("count", now - timedelta(minutes=5), now + timedelta(minutes=1),
                               step_s=360, deployment="digits")
    assert out["series"][0]["points"][0]["value"] == 12  # one event per input row


def test_a_torch_export_version_is_served_when_it_has_no_onnx(
        api: TestClient, client: Client) -> None:
    import torch

    from tests.serving._digits import PREPROCESSING, classifier

    clf = classifier(1.0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        net[1].weight.copy_(torch.from_numpy(clf.coef_.astype(np.float32)))
        net[1].bias.copy_(torch.from_numpy(clf.intercept_.astype(np.float32)))
    program = torch.export.export(net.eval(), (torch.zeros(2, 1, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    art = registry.put_artifact("alpha", buf.getvalue(), name="model.pt2")
    mv = registry.register_version("alpha", "torchy", artifacts={"model.pt2": art.digest},
                                   framework="pytorch", preprocessing=PREPROCESSING)
    client.serving.create("torchy", f"torchy@{mv.version}")
    pixels = digits().test_x[:20]
    out = client.serving.predict("torchy", pixels.tolist())
    assert [p["label"] for p in out["predictions"]] == expected_labels(1.0, pixels)


def test_in_process_callers_on_their_own_event_loops_share_the_model(
        api: TestClient, client: Client, digits_model: DigitsModel) -> None:
    """Pipeline steps call `asyncio.run(serving.predict(...))` beside the server's own loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    serving = api.app.state.platform.serving  # type: ignore[attr-defined]
    client.serving.create("digits", "digits@production")
    pixels = digits().test_x[:5]
    want = expected_labels(digits_model.c1, pixels)

    def in_own_loop(_: int) -> list[str]:
        out = asyncio.run(serving.predict("alpha", "digits", pixels.tolist()))
        return [p.label for p in out.predictions]

    assert [p["label"] for p in client.serving.predict("digits", pixels.tolist())["predictions"]] \
        == want
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(in_own_loop, range(6))) == [want] * 6
    assert [p["label"] for p in client.serving.predict("digits", pixels.tolist())["predictions"]] \
        == want


@pytest.mark.parametrize("version", [10**25, 2**40, 2**31])
def test_a_version_past_what_the_stores_keep_is_refused_and_metrics_keep_working(
        api: TestClient, client: Client, admin_token: str, digits_model: DigitsModel,
        version: int) -> None:
    """Such a request once left an event no store could keep, retried before every later
    one: metrics queries answered 503 and nothing was stored, for every project."""
    client.serving.create("digits", "digits@production")
    pixels = digits().test_x[:2].tolist()
    h = bearer(admin_token)
    r = api.post(f"/api/v1/projects/alpha/deployments/digits/predict?version={version}",
                 json={"inputs": pixels}, headers=h)
    assert r.status_code == 400 and "version" in r.json()["error"]["message"], r.text
    v2 = {"inputs": [{"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32",
                      "data": [0.0] * 64}]}
    for path in (f"/v2/models/digits/versions/{version}/infer",
                 f"/v2/models/digits/versions/{version}/ready"):
        r = api.post(path, json=v2, headers={**h, "X-Modelyard-Project": "alpha"}) \
            if path.endswith("infer") else \
            api.get(path, headers={**h, "X-Modelyard-Project": "alpha"})
        assert r.status_code == 400 and "version" in r.json()["error"], (path, r.text)
    client.serving.predict("digits", pixels)
    now = utcnow()
    out = client.metrics.query("count", now - timedelta(minutes=5), now + timedelta(minutes=1),
                               step_s=360, deployment="digits")
    assert out["series"][0]["points"][0]["value"] == 2
