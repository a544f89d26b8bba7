"""What the registry stores from a caller is bounded and clean (issue 22 item 23): oversized
params, tags and version fields are refused naming the field, and nothing is stored; names
hold no NUL; an artifact's name follows its latest upload."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Team, bearer

P = "/api/v1/projects/alpha"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"params": {"blob": "x" * 60_000}}, 400, "params.blob"),
    ({"params": {f"p{i}": i for i in range(1001)}}, 413, "params"),
    ({"tags": {"note": "x" * 5001}}, 400, "tags.note"),
    ({"tags": {f"t{i}": "v" for i in range(1001)}}, 413, "tags"),
    ({"experiment": "a\x00b"}, 400, "experiment"),
    ({"params": {"path": "a\x00b"}}, 400, "params.path"),
])
def test_an_oversized_or_unclean_run_is_refused_naming_the_field(
        api: TestClient, team: Team, body: dict[str, object], status: int, field: str) -> None:
    h = bearer(team.editor)
    r = api.post(f"{P}/runs", json=body, headers=h)
    assert r.status_code == status, r.text
    assert r.json()["error"]["details"]["field"] == field
    assert api.post(f"{P}/runs:search", json={}, headers=h).json()["runs"] == []


def test_oversized_version_fields_and_nul_in_names_are_refused(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    art = api.post(f"{P}/artifacts", params={"name": "m.onnx"}, content=b"w", headers=h).json()
    for body, field in (({"metrics": {"acc": "x" * 70_000}}, "metrics"),
                        ({"artifacts": {"m\x00.onnx": art["digest"]}}, "artifact name")):
        r = api.post(f"{P}/models/digits/versions", json=body, headers=h)
        assert r.status_code in (400, 413), r.text
        assert r.json()["error"]["details"]["field"] == field
    assert api.get(f"{P}/models", headers=h).json() == []
    r = api.post(f"{P}/artifacts", params={"name": "a\x00b"}, content=b"w", headers=h)
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "name", r.text


def test_an_artifact_uploaded_again_under_a_new_name_takes_it(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    first = api.post(f"{P}/artifacts", params={"name": "old.onnx"}, content=b"w", headers=h).json()
    again = api.post(f"{P}/artifacts", params={"name": "new.onnx"}, content=b"w", headers=h).json()
    unnamed = api.post(f"{P}/artifacts", content=b"w", headers=h).json()
    assert first["digest"] == again["digest"] == unnamed["digest"]  # one artifact: its bytes
    assert (again["name"], unnamed["name"]) == ("new.onnx", "new.onnx")
    listed = api.get(f"{P}/artifacts", headers=h).json()
    assert [(a["digest"], a["name"]) for a in listed] == [(first["digest"], "new.onnx")]
