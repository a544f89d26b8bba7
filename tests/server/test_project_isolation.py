"""A token of project beta reaches nothing of project alpha, even knowing alpha's ids.

tests/server/test_authz_matrix.py proves every `/projects/alpha/...` route refuses beta's token
at the access check. This file covers the other way in: beta's own routes, asked for the ids
and names of objects that really exist in alpha (a store that looked objects up by id alone
would hand them over), and beta's lists, which must not show alpha's objects.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Team, bearer

A = "/api/v1/projects/alpha"
B = "/api/v1/projects/beta"


def _ok(r: Any) -> Any:
    assert r.status_code < 300, r.text
    return r.json()


@pytest.fixture
def alpha(api: TestClient, team: Team) -> dict[str, str]:
    """Objects of alpha, made by alpha's editor; their ids and names."""
    h = bearer(team.editor)
    run = _ok(api.post(f"{A}/runs", json={"experiment": "secret", "params": {"lr": 0.1},
                                          "job_id": "job_alpha", "dataset_snapshot": "snap_alpha"},
                       headers=h))
    _ok(api.post(f"{A}/runs/{run['id']}/metrics",
                 json={"points": [{"key": "acc", "step": 0, "value": 0.99}]}, headers=h))
    art = _ok(api.post(f"{A}/artifacts", params={"name": "model.onnx"}, content=b"alpha-weights",
                       headers={**h, "Content-Type": "application/octet-stream"}))
    _ok(api.post(f"{A}/models/digits/versions", json={"artifacts": {"model.onnx": art["digest"]},
                                                       "run_id": run["id"]}, headers=h))
    _ok(api.put(f"{A}/models/digits/aliases/production", json={"version": 1},
                headers=bearer(team.owner)))
    _ok(api.post(f"{A}/datasets", json={"name": "faces", "type": "generic"}, headers=h))
    _ok(api.post(f"{A}/metrics/alerts", json={"name": "slow", "metric": "latency_p95", "op": ">",
                                             "threshold": 100, "window_s": 60}, headers=h))
    return {"run": run["id"], "digest": art["digest"]}


def test_betas_routes_do_not_find_alphas_objects_by_id_or_name(api: TestClient, team: Team,
                                                                alpha: dict[str, str]) -> None:
    h = bearer(team.outsider)  # admin of beta
    for path in (f"/runs/{alpha['run']}", f"/runs/{alpha['run']}/metrics?key=acc",
                 f"/artifacts/{alpha['digest']}", f"/artifacts/{alpha['digest']}/meta",
                 "/models/digits", "/models/digits/versions/1", "/models/digits/resolve",
                 "/models/digits/aliases", "/lineage?node=model:digits@1",
                 "/datasets/faces", "/metrics/alerts/slow"):
        r = api.get(B + path, headers=h)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert "alpha" not in r.text  # not even a hint of where it lives
    # writes through beta do not touch alpha's objects either
    assert api.post(f"{B}/runs/{alpha['run']}/metrics", headers=h,
                    json={"points": [{"key": "acc", "step": 1, "value": 0.0}]}).status_code == 404
    assert api.post(f"{B}/models/digits/versions", headers=h,
                    json={"artifacts": {"model.onnx": alpha["digest"]}}).status_code == 400
    assert api.post(f"{B}/lineage/edges", headers=h, json={
        "src_kind": "model_version", "src_id": "digits@1", "dst_kind": "deployment",
        "dst_id": "d"}).status_code == 404


def test_betas_lists_and_searches_show_nothing_of_alpha(api: TestClient, team: Team,
                                                       alpha: dict[str, str]) -> None:
    h = bearer(team.outsider)
    assert _ok(api.get(f"{B}/runs", headers=h))["runs"] == []
    assert _ok(api.post(f"{B}/runs:search", json={"filter": "metrics.acc > 0"},
                        headers=h))["runs"] == []
    for path in ("/artifacts", "/models", "/datasets", "/metrics/alerts"):
        listed = _ok(api.get(B + path, headers=h))
        items = listed["items"] if isinstance(listed, dict) else listed
        assert items == [], path
    # alpha's own members still see everything: the objects exist
    v = bearer(team.viewer)
    assert [r["id"] for r in _ok(api.get(f"{A}/runs", headers=v))["runs"]] == [alpha["run"]]
    assert [m["name"] for m in _ok(api.get(f"{A}/models", headers=v))] == ["digits"]
    assert api.get(f"{A}/artifacts/{alpha['digest']}", headers=v).content == b"alpha-weights"
    assert api.get(f"{A}/datasets/faces", headers=v).status_code == 200
    assert api.get(f"{A}/metrics/alerts/slow", headers=v).status_code == 200
