"""The registry over REST: streamed artifacts, roles, aliases, search and lineage."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from tests.conftest import Team, bearer
from tests.registry.conftest import blob_files

P = "/api/v1/projects/alpha"


def _upload(api: TestClient, token: str, data: bytes | Iterator[bytes], name: str = "m.bin",
            headers: dict[str, str] | None = None) -> object:
    return api.post(f"{P}/artifacts", params={"name": name}, content=data,
                    headers={**bearer(token), "Content-Type": "application/octet-stream",
                             **(headers or {})})


def _register(api: TestClient, token: str, model: str = "digits", **body: object) -> dict:
    r = api.post(f"{P}/models/{model}/versions", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()


def test_uploading_the_same_bytes_twice_stores_them_once(api: TestClient, team: Team,
                                                         settings: Settings) -> None:
    data = bytes(range(256)) * 5000

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    first = _upload(api, team.editor, chunks())
    second = _upload(api, team.editor, data, name="again.bin")
    assert first.status_code == second.status_code == 201, first.text
    assert first.json()["digest"] == second.json()["digest"] == hashlib.sha256(data).hexdigest()
    assert len(blob_files(settings.resolved_blob_root)) == 1

    got = api.get(f"{P}/artifacts/{first.json()['digest']}", headers=bearer(team.viewer))
    assert got.status_code == 200 and got.content == data
    head = api.head(f"{P}/artifacts/{first.json()['digest']}", headers=bearer(team.viewer))
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)


def test_an_upload_whose_stream_fails_midway_leaves_nothing(api: TestClient, team: Team,
                                                            settings: Settings) -> None:
    def broken() -> Iterator[bytes]:
        yield b"a" * 100_000
        raise ConnectionResetError("client went away")

    r = _upload(api, team.editor, broken())
    assert r.status_code == 400  # type: ignore[attr-defined]
    listed = api.get(f"{P}/artifacts", headers=bearer(team.viewer))
    assert listed.status_code == 200 and listed.json() == []
    assert blob_files(settings.resolved_blob_root) == []


def test_a_truncated_upload_is_refused_and_stores_nothing(api: TestClient, team: Team,
                                                          settings: Settings) -> None:
    r = _upload(api, team.editor, iter([b"x" * 1000]), headers={"Content-Length": "5000"})
    assert r.status_code == 400, r.text
    bad_digest = api.post(f"{P}/artifacts", params={"sha256": "0" * 64}, content=b"hello",
                          headers=bearer(team.editor))
    assert bad_digest.status_code == 400
    assert api.get(f"{P}/artifacts", headers=bearer(team.viewer)).json() == []
    assert blob_files(settings.resolved_blob_root) == []


def test_viewer_reads_but_cannot_move_an_alias_and_outsiders_see_nothing(api: TestClient,
                                                                        team: Team) -> None:
    _register(api, team.editor)
    _register(api, team.editor)
    moved = api.put(f"{P}/models/digits/aliases/production", json={"version": 1},
                    headers=bearer(team.editor))
    assert moved.status_code == 200 and moved.json()["actor"] == "eve"

    denied = api.put(f"{P}/models/digits/aliases/production", json={"version": 2},
                     headers=bearer(team.viewer))
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"
    resolved = api.get(f"{P}/models/digits/resolve", params={"ref": "production"},
                       headers=bearer(team.viewer))
    assert resolved.status_code == 200 and resolved.json()["version"] == 1

    for path in ("/models/digits", "/models/digits/resolve", "/models", "/artifacts", "/runs"):
        assert api.get(P + path, headers=bearer(team.outsider)).status_code == 404
    assert api.put(f"{P}/models/digits/aliases/production", json={"version": 2},
                   headers=bearer(team.outsider)).status_code == 404


def test_alias_history_says_who_moved_it_from_where_to_where(api: TestClient, team: Team) -> None:
    for _ in range(2):
        _register(api, team.editor)
    api.put(f"{P}/models/digits/aliases/production", json={"version": 1}, headers=bearer(team.owner))
    api.put(f"{P}/models/digits/aliases/production", json={"version": 2}, headers=bearer(team.editor))
    history = api.get(f"{P}/models/digits/aliases", params={"alias": "production"},
                      headers=bearer(team.viewer)).json()
    assert [(h["actor"], h["from_version"], h["to_version"]) for h in history] == [
        ("eve", 1, 2), ("ada", None, 1)]


def test_bad_references_and_bodies_are_4xx(api: TestClient, team: Team) -> None:
    _register(api, team.editor)
    h = bearer(team.viewer)
    assert api.get(f"{P}/models/digits/resolve", params={"ref": "digits@@x"}, headers=h).status_code == 400
    assert api.get(f"{P}/models/digits/resolve", params={"ref": "9"}, headers=h).status_code == 404
    assert api.get(f"{P}/models/nope/resolve", headers=h).status_code == 404
    e = bearer(team.editor)
    assert api.put(f"{P}/models/digits/aliases/production", json={"version": "x"}, headers=e).status_code == 400
    assert api.post(f"{P}/models/digits/versions", json={"artifacts": {"m": "nothex"}},
                    headers=e).status_code == 400
    assert api.get(f"{P}/lineage", params={"node": "nokind"}, headers=h).status_code == 400
    assert api.post(f"{P}/runs:search", json={"filter": "metrics.x >> 2"}, headers=h).status_code == 400


def test_runs_metrics_and_search_over_rest(api: TestClient, team: Team) -> None:
    e = bearer(team.editor)
    ids = []
    for i in range(7):
        run = api.post(f"{P}/runs", json={"experiment": "sweep", "params": {"lr": i / 10}}, headers=e)
        assert run.status_code == 201, run.text
        ids.append(run.json()["id"])
        points = [{"key": "acc", "step": s, "value": i / 10 + s / 100} for s in range(20)]
        logged = api.post(f"{P}/runs/{ids[-1]}/metrics", json={"points": points}, headers=e)
        assert logged.json() == {"logged": 20}
    series = api.get(f"{P}/runs/{ids[0]}/metrics", params={"key": "acc"}, headers=bearer(team.viewer))
    assert [p["step"] for p in series.json()] == list(range(20))

    seen, token = [], None
    while True:
        page = api.post(f"{P}/runs:search", headers=bearer(team.viewer), json={
            "filter": "metrics.acc > 0.3", "order_by": ["params.lr desc"], "limit": 2,
            "page_token": token, "fields": ["params.lr"]}).json()
        seen += [r["params"]["lr"] for r in page["runs"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [0.6, 0.5, 0.4, 0.3, 0.2]
    finished = api.post(f"{P}/runs/{ids[0]}/finish", json={"status": "failed"}, headers=e)
    assert finished.json()["status"] == "failed"
    assert api.post(f"{P}/runs", json={}, headers=bearer(team.viewer)).status_code == 403


def test_lineage_route_walks_upstream_from_a_model_version(api: TestClient, team: Team) -> None:
    e = bearer(team.editor)
    run = api.post(f"{P}/runs", json={"params": {"lr": 0.1}, "job_id": "job_1", "code_hash": "c1",
                                      "dataset_snapshot": "snap_1"}, headers=e).json()
    art = _upload(api, team.editor, b"onnx").json()  # type: ignore[attr-defined]
    api.post(f"{P}/models/digits/versions", json={"artifacts": {"model.onnx": art["digest"]},
                                                  "run_id": run["id"]}, headers=e)
    graph = api.get(f"{P}/lineage", params={"node": "model:digits@1", "depth": 1},
                    headers=bearer(team.viewer)).json()
    nodes = {(n["kind"], n["id"]): n for n in graph["nodes"]}
    assert set(nodes) == {("model_version", "digits@1"), ("run", run["id"]), ("job", "job_1"),
                          ("code", "c1"), ("dataset_snapshot", "snap_1")}
    assert nodes[("run", run["id"])]["attrs"]["params"] == {"lr": 0.1}
    assert graph["root"]["id"] == "digits@1"


def test_project_admin_collects_unheld_artifacts_of_the_project_only(api: TestClient, team: Team,
                                                                     settings: Settings) -> None:
    held = _upload(api, team.editor, b"model-bytes").json()  # type: ignore[attr-defined]
    _upload(api, team.editor, b"scratch-bytes")
    _register(api, team.editor, artifacts={"model.onnx": held["digest"]})
    assert api.post(f"{P}/artifacts:gc", params={"retention_s": 0},
                    headers=bearer(team.editor)).status_code == 403
    report = api.post(f"{P}/artifacts:gc", params={"retention_s": 0}, headers=bearer(team.owner))
    assert report.status_code == 200, report.text
    assert report.json()["artifact_rows_deleted"] == 1 and report.json()["blobs_deleted"] == 1
    left = api.get(f"{P}/artifacts", headers=bearer(team.viewer)).json()
    assert [a["digest"] for a in left] == [held["digest"]]
    assert len(blob_files(settings.resolved_blob_root)) == 1


def test_out_of_range_numbers_are_4xx_not_500(api: TestClient, team: Team) -> None:
    _register(api, team.editor)
    h = bearer(team.viewer)
    huge = str(10**30)
    assert api.get(f"{P}/models/digits/versions/{huge}", headers=h).status_code in (400, 404)
    assert api.get(f"{P}/models/digits/resolve", params={"ref": huge}, headers=h).status_code == 400
    assert api.put(f"{P}/models/digits/aliases/production", json={"version": 10**30},
                   headers=bearer(team.editor)).status_code == 400
    assert api.post(f"{P}/runs:search", json={"page_token": "eyJvIjogMWUzMDB9"},
                    headers=h).status_code == 400
