"""`/predict` answered before routing (serving/fastpath.py) says exactly what the route says,
and leaves every request it is unsure of to the app."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from modelyard.serving.fastpath import PredictFastPath
from tests.conftest import Team, bearer
from tests.serving._digits import digits, expected_labels
from tests.serving.conftest import DigitsModel

URL = "/api/v1/projects/alpha/deployments/{}/predict"


def _fastpath(api: TestClient) -> PredictFastPath:
    app: Any = api.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(app, PredictFastPath):
        app = app.app
    return app


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
