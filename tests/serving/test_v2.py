"""The Open Inference Protocol (KServe v2) REST routes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modelyard.sdk.client import Client
from tests.conftest import bearer
from tests.serving._digits import digits, expected_labels
from tests.serving.conftest import DigitsModel


def _h(token: str) -> dict[str, str]:
    return {**bearer(token), "X-Modelyard-Project": "alpha"}


def _tensor(x: np.ndarray, datatype: str = "FP32", name: str = "input") -> dict[str, Any]:
    return {"name": name, "shape": list(x.shape), "datatype": datatype,
            "data": x.reshape(-1).tolist()}


def test_server_and_model_metadata(api: TestClient, client: Client, admin_token: str,
                                   digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    assert api.get("/v2").json()["name"] == "modelyard"
    assert api.get("/v2/health/live").status_code == 200
    assert api.get("/v2/health/ready").status_code == 200
    meta = api.get("/v2/models/digits", headers=_h(admin_token)).json()
    assert meta["name"] == "digits"
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert api.get("/v2/models/digits/ready", headers=_h(admin_token)).status_code == 200
    assert api.get("/v2/models/digits/versions/2", headers=_h(admin_token)).status_code == 200


def test_infer_json_tensors_gives_the_models_logits(api: TestClient, client: Client,
                                                    admin_token: str,
                                                    digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    pixels = digits().test_x[:30]
    x = (pixels / 255).astype(np.float32).reshape(30, 1, 8, 8)
    r = api.post("/v2/models/digits/infer", headers=_h(admin_token),
                 json={"id": "abc", "inputs": [_tensor(x)], "outputs": [{"name": "logits"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "abc" and body["model_name"] == "digits"
    assert body["model_version"] == "1"
    out = body["outputs"][0]
    assert out["name"] == "logits" and out["datatype"] == "FP32" and out["shape"] == [30, 10]
    labels = [str(i) for i in np.asarray(out["data"]).reshape(30, 10).argmax(axis=1)]
    assert labels == expected_labels(digits_model.c1, pixels)
    # a specific version, and nested data
    r = api.post("/v2/models/digits/versions/2/infer", headers=_h(admin_token),
                 json={"inputs": [{**_tensor(x[:2]), "data": x[:2].tolist()}]})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "2"


def test_malformed_requests_get_4xx_with_the_reason(api: TestClient, client: Client,
                                                    admin_token: str,
                                                    digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    h = _h(admin_token)
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    cases = [
        ({"inputs": [_tensor(x.reshape(2, 64))]}, "shape"),
        ({"inputs": [_tensor(x, "INT64")]}, "datatype INT64"),
        ({"inputs": [{**_tensor(x), "data": [0.0] * 100}]}, "128"),
        ({"inputs": [{**_tensor(x), "data": ["a"] * 128}]}, "not FP32"),
        ({"inputs": [_tensor(x, name="pixels")]}, "inputs"),
        ({"inputs": [_tensor(x)], "outputs": [{"name": "probs"}]}, "unknown output"),
        ({"inputs": []}, "inputs"),
        ({"nothing": 1}, "inputs"),
    ]
    for body, reason in cases:
        r = api.post("/v2/models/digits/infer", headers=h, json=body)
        assert r.status_code == 400, (body, r.text)
        assert reason in r.json()["error"], (reason, r.text)
        assert r.json()["code"] == "invalid_argument"
    r = api.post("/v2/models/digits/infer", headers={**h, "content-type": "application/json"},
                 content=b"[1, 2")
    assert r.status_code == 400
    # the JSON header of a binary request, nested past the depth limit: a 400, not a crash
    head = b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = api.post("/v2/models/digits/infer", content=head,
                 headers={**h, "content-type": "application/octet-stream",
                          "Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and "nests deeper" in r.json()["error"], r.text
    r = api.post("/v2/models/nope/infer", headers=h, json={"inputs": [_tensor(x)]})
    assert r.status_code == 404 and "nope" in r.json()["error"]
    assert api.get("/v2/models/nope", headers=h).status_code == 404
    r = api.get("/v2/models/digits", headers=bearer(admin_token))
    assert r.status_code == 400 and "X-Modelyard-Project" in r.json()["error"]


@pytest.mark.parametrize(("datatype", "data", "want"), [
    ("FP32", [0.5, 1, 2.25, 3], [0.5, 1.0, 2.25, 3.0]),  # flat: straight to numpy
    ("FP32", [[0.5, 1], [2.25, 3]], [0.5, 1.0, 2.25, 3.0]),  # nested: flattened row-major
    ("INT32", [1, 2, 3.0, 4], [1, 2, 3, 4]),  # an integral float is an integer
    ("BOOL", [True, False, True, True], [True, False, True, True]),
    ("FP32", [0.5, True, 2, 3], "not a number"),
    ("FP32", [0.5, "1", 2, 3], "not a number"),
    ("INT32", [1, 2, 3.5, 4], "not an integer"),
    ("BOOL", [True, 1, True, True], "not a boolean"),
])
def test_tensor_values_are_checked_whether_flat_or_nested(datatype: str, data: list[Any],
                                                          want: list[Any] | str) -> None:
    from modelyard.core.errors import InvalidArgument
    from modelyard.serving._v2 import decode_tensor
    from modelyard.serving.models import TensorIn, TensorMeta

    tensor = TensorIn(name="x", shape=[2, 2], datatype=datatype, data=data)
    meta = TensorMeta(name="x", datatype=datatype, shape=[-1, 2])
    if isinstance(want, str):
        with pytest.raises(InvalidArgument, match=want):
            decode_tensor(tensor, meta)
    else:
        assert decode_tensor(tensor, meta).reshape(-1).tolist() == want


def test_request_json_orjson_refuses_is_read_as_the_standard_parser_reads_it() -> None:
    from modelyard.core.errors import InvalidArgument
    from modelyard.serving._v2 import parse_request

    body = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [NaN, 1]}]}'
    req, _ = parse_request(body, None)
    assert req.inputs[0].data is not None and req.inputs[0].data[1] == 1
    with pytest.raises(InvalidArgument, match="not JSON"):
        parse_request(b'{"inputs": [', None)
