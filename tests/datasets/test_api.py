"""HTTP behaviour: roles, error shapes, pagination, streamed uploads."""

from __future__ import annotations

import base64
import json

from fastapi.testclient import TestClient

from tests.conftest import Team, bearer
from tests.datasets.conftest import png

BASE = "/api/v1/projects/alpha/datasets"


def _row(label: str = "a") -> dict:
    return {"image": base64.b64encode(png()).decode(), "label": label}


def test_viewer_reads_but_cannot_write_and_outsider_sees_nothing(api: TestClient, team: Team) -> None:
    r = api.post(BASE, json={"name": "imgs", "type": "image_classification"},
                 headers=bearer(team.editor))
    assert r.status_code == 201, r.text
    r = api.post(f"{BASE}/imgs/commits", json={"rows": [_row()]}, headers=bearer(team.editor))
    assert r.status_code == 201, r.text

    denied = api.post(f"{BASE}/imgs/commits", json={"rows": [_row()]}, headers=bearer(team.viewer))
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"
    assert api.post(BASE, json={"name": "x", "type": "generic"},
                    headers=bearer(team.viewer)).status_code == 403
    assert api.get(f"{BASE}/imgs/versions", headers=bearer(team.viewer)).status_code == 200

    for path in (f"{BASE}/imgs", f"{BASE}/imgs/versions", BASE):
        assert api.get(path, headers=bearer(team.outsider)).status_code == 404
    assert api.post(f"{BASE}/imgs/commits", json={"rows": [_row()]},
                    headers=bearer(team.outsider)).status_code == 404
    assert api.get(BASE).status_code == 401
    versions = api.get(f"{BASE}/imgs/versions", headers=bearer(team.viewer)).json()
    assert [v["version"] for v in versions] == [1]


def test_bad_rows_get_400_with_rows_and_fields(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    api.post(BASE, json={"name": "imgs", "type": "image_classification"}, headers=h)
    r = api.post(f"{BASE}/imgs/commits", json={"rows": [_row(), {"image": "%%%", "label": "b"}]},
                 headers=h)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_argument"
    assert err["details"]["rows"] == [1] and err["details"]["fields"] == ["image"]
    assert api.get(f"{BASE}/imgs/versions", headers=h).json() == []


def test_list_is_paginated(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    for i in range(5):
        assert api.post(BASE, json={"name": f"d{i}", "type": "generic"}, headers=h).status_code == 201
    names, token = [], None
    while True:
        params = {"limit": 2, **({"page_token": token} if token else {})}
        page = api.get(BASE, params=params, headers=h).json()
        names += [d["name"] for d in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert names == [f"d{i}" for i in range(5)]


def test_jsonl_upload_is_streamed_into_one_commit(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    api.post(BASE, json={"name": "talk", "type": "text_intent"}, headers=h)
    lines = [json.dumps({"text": f"hello {i}", "labels": ["greet"]}) for i in range(300)]
    body = iter([("\n".join(lines[:150]) + "\n").encode(), "\n".join(lines[150:]).encode()])
    r = api.post(f"{BASE}/talk/upload", params={"format": "jsonl", "tags": "v1,raw"},
                 content=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == 300 and r.json()["tags"] == ["raw", "v1"]
    bad = api.post(f"{BASE}/talk/upload", params={"format": "jsonl"},
                   content=b'{"text": "ok", "labels": ["a"]}\n{broken\n', headers=h)
    assert bad.status_code == 400 and bad.json()["error"]["details"]["rows"] == [1]
    assert len(api.get(f"{BASE}/talk/versions", headers=h).json()) == 1


def test_a_cut_short_upload_is_refused_and_commits_nothing(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    api.post(BASE, json={"name": "talk", "type": "text_intent"}, headers=h)
    whole = b'{"text": "hello", "labels": ["greet"]}\n' * 10
    r = api.post(f"{BASE}/talk/upload", params={"format": "jsonl"}, content=iter([whole]),
                 headers={**h, "Content-Length": str(len(whole) * 2)})
    assert r.status_code == 400 and "nothing was stored" in r.json()["error"]["message"]
    assert api.get(f"{BASE}/talk/versions", headers=h).json() == []


def test_generic_rows_refuse_dotdot_paths(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    api.post(BASE, json={"name": "files", "type": "generic"}, headers=h)
    r = api.post(f"{BASE}/files/commits", json={"rows": [
        {"file": "a/b.bin", "metadata": {"k": 1}}, {"file": "../etc/passwd"}]}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["details"]["rows"] == [1]
    assert api.get(f"{BASE}/files/versions", headers=h).json() == []


def test_tabular_needs_a_valid_declaration(api: TestClient, team: Team) -> None:
    h = bearer(team.editor)
    r = api.post(BASE, json={"name": "t", "type": "tabular", "config": {"columns": {"x": "float"},
                                                                       "target": "y"}}, headers=h)
    assert r.status_code == 400 and "target" in r.json()["error"]["message"]
    ok = api.post(BASE, json={"name": "t", "type": "tabular", "config": {
        "columns": {"x": "float", "y": "string"}, "target": "y"}}, headers=h)
    assert ok.status_code == 201
    r = api.post(f"{BASE}/t/commits", json={"rows": [{"x": "1.5", "y": "a"}, {"x": "abc", "y": "b"}]},
                 headers=h)
    assert r.status_code == 400 and r.json()["error"]["details"]["fields"] == ["x"]
