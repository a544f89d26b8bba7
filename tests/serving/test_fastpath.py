"""`/predict` answered before routing (serving/fastpath.py) says exactly what the route says,
and leaves every request it is unsure of to the app."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from modelyard.serving.fastpath import PredictFastPath
from tests.conftest import Team, bearer
from tests.serving._digits import digits, expected_labels
from tests.serving.conftest import DigitsModel

URL = "/api/v1/projects/alpha/deployments/{}/predict"


def _fastpath(api: TestClient) -> PredictFastPath:
    fast = api.app.fast_path  # type: ignore[attr-defined]
    assert isinstance(fast, PredictFastPath)
    return fast


def test_the_fast_path_answers_a_remembered_caller_like_the_route(
        api: TestClient, team: Team, digits_model: DigitsModel) -> None:
    h = bearer(team.viewer)
    api.post("/api/v1/projects/alpha/deployments", headers=bearer(team.editor),
             json={"name": "digits", "model_ref": "digits@production"}).raise_for_status()
    pixels = digits().test_x[:5].tolist()
    fast = _fastpath(api)

    first = api.post(URL.format("digits"), headers=h, json={"inputs": pixels})  # token not seen
    assert fast.answered == 0
    second = api.post(URL.format("digits"), headers=h, json={"inputs": pixels})
    assert fast.answered == 1
    assert first.status_code == second.status_code == 200
    want = expected_labels(digits_model.c1, digits().test_x[:5])
    for r in (first, second):
        body = r.json()
        assert [p["label"] for p in body["predictions"]] == want
        assert body["model_version"] == digits_model.v1 and body["request_id"].startswith("req_")
    assert first.json()["predictions"] == second.json()["predictions"]
    # byte for byte the route's JSON (the fast path writes it without the response model)
    ids = first.json()["request_id"].encode(), second.json()["request_id"].encode()
    assert second.content == first.content.replace(*ids)
    assert second.headers["content-type"] == first.headers["content-type"]

    # errors from the service: the one error shape, the same status as through the route
    unknown = api.post(URL.format("nope"), headers=h, json={"inputs": pixels})
    routed = api.post(URL.format("nope") + "?version=1", headers=h, json={"inputs": pixels})
    assert fast.answered == 2  # the query string sent the second one to the route
    assert unknown.status_code == routed.status_code == 404
    assert unknown.json()["error"]["code"] == routed.json()["error"]["code"] == "not_found"
    wrong = api.post(URL.format("digits"), headers=h, json={"inputs": [[1, 2, 3]]})
    assert fast.answered == 3 and wrong.status_code == 400
    assert "input" in wrong.json()["error"]["message"]


def test_requests_it_is_unsure_of_go_to_the_route(api: TestClient, team: Team,
                                                  digits_model: DigitsModel) -> None:
    api.post("/api/v1/projects/alpha/deployments", headers=bearer(team.editor),
             json={"name": "digits", "model_ref": "digits@production"}).raise_for_status()
    pixels = digits().test_x[:2].tolist()
    fast = _fastpath(api)
    for token in (team.viewer, team.outsider):  # both remembered after this
        api.post(URL.format("digits"), headers=bearer(token), json={"inputs": pixels})
    answered = fast.answered

    outsider = api.post(URL.format("digits"), headers=bearer(team.outsider),
                        json={"inputs": pixels})
    assert outsider.status_code == 404  # outsiders learn nothing, from the route
    empty = api.post(URL.format("digits"), headers=bearer(team.viewer), json={"inputs": []})
    assert empty.status_code == 400 and "inputs" in empty.json()["error"]["message"]
    extra = api.post(URL.format("digits"), headers=bearer(team.viewer),
                     json={"inputs": pixels, "note": "x"})
    assert extra.status_code == 200  # the route ignores unknown fields; so does the answer
    nobody = api.post(URL.format("digits"), json={"inputs": pixels})
    assert nobody.status_code == 401
    assert fast.answered == answered  # none of these was answered before routing


V2 = "/v2/models/{}/infer"


def test_v2_infer_is_answered_like_the_route_json_binary_and_errors(
        api: TestClient, team: Team, digits_model: DigitsModel) -> None:
    api.post("/api/v1/projects/alpha/deployments", headers=bearer(team.editor),
             json={"name": "digits", "model_ref": "digits@production"}).raise_for_status()
    h = {**bearer(team.viewer), "X-Modelyard-Project": "alpha"}
    x = (digits().test_x[:4] / 255).astype(np.float32).reshape(4, 1, 8, 8)
    tensor = {"name": "input", "shape": [4, 1, 8, 8], "datatype": "FP32",
              "data": x.reshape(-1).tolist()}
    fast = _fastpath(api)
    first = api.post(V2.format("digits"), headers=h, json={"inputs": [tensor]})
    assert first.status_code == 200 and fast.answered == 0  # the route: a token not seen yet

    def both(name: str, **kw: Any) -> tuple[Any, Any]:
        """(answered before routing, answered by the route: a query string sends it there)"""
        before = fast.answered
        quick = api.post(V2.format(name), **kw)
        routed = api.post(V2.format(name) + "?via=route", **kw)
        assert fast.answered == before + 1
        return quick, routed

    quick, routed = both("digits", headers=h, json={"id": "q", "inputs": [tensor]})
    assert quick.status_code == routed.status_code == 200
    assert quick.json() == routed.json()
    labels = np.asarray(quick.json()["outputs"][0]["data"]).reshape(4, 10).argmax(axis=1)
    assert [str(i) for i in labels] == expected_labels(digits_model.c1, digits().test_x[:4])

    # the binary tensor extension (what tritonclient sends): JSON header, then raw bytes
    head = _dumps({"id": "b", "inputs": [{"name": "input", "shape": [4, 1, 8, 8], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}})
    binary = {"headers": {**h, "content-type": "application/octet-stream",
                          "Inference-Header-Content-Length": str(len(head))},
              "content": head + x.tobytes()}
    quick, routed = both("digits", **binary)
    assert quick.status_code == routed.status_code == 200
    assert quick.content == routed.content
    assert quick.headers["inference-header-content-length"] == \
        routed.headers["inference-header-content-length"]

    # errors from the service, in the protocol's shape, the same either way
    for name, body, status in (("nope", {"inputs": [tensor]}, 404),
                               ("digits", {"inputs": [{**tensor, "shape": [4, 64]}]}, 400),
                               ("digits", {"inputs": [{**tensor, "datatype": "INT64"}]}, 400)):
        quick, routed = both(name, headers=h, json=body)
        assert quick.status_code == routed.status_code == status
        assert quick.json() == routed.json() and quick.json()["error"]

    # bodies that do not parse, other projects and outsiders: the route, never the fast path
    before = fast.answered
    bad = api.post(V2.format("digits"), headers={**h, "content-type": "application/json"},
                   content=b"[1, 2")
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    api.post(V2.format("digits"), headers={**bearer(team.outsider), "X-Modelyard-Project":
                                           "alpha"}, json={"inputs": [tensor]})
    outsider = api.post(V2.format("digits"), headers={**bearer(team.outsider),
                                                      "X-Modelyard-Project": "alpha"},
                        json={"inputs": [tensor]})
    assert outsider.status_code == 404
    no_project = api.post(V2.format("digits"), headers=bearer(team.viewer),
                          json={"inputs": [tensor]})
    assert no_project.status_code == 400 and "X-Modelyard-Project" in no_project.json()["error"]
    assert fast.answered == before


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()
