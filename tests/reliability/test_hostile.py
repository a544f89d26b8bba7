"""Hostile input: path traversal in every name and key, deep JSON, invalid UTF-8, big bodies.

Oversized JSON bodies (declared and chunked) on a project route are in tests/server/test_errors.py;
here the streamed uploads (artifacts, dataset files, code packages) get the same 413.
"""

from __future__ import annotations

import base64
import io
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import ApiSettings, Settings
from modelyard.server.app import create_app
from tests._servers.live import live_server
from tests.conftest import bearer
from tests.reliability.conftest import Summary

P = "/api/v1/projects/alpha"

# `..` in its spellings: plain, percent-encoded (once and twice), absolute, Windows-style.
EVIL = ["..", "../../escape", "..%2f..%2fescape", "%2e%2e", "%2e%2e%2fescape", "%252e%252e",
        "/etc/passwd", "/tmp/escape", "..\\..\\escape", "C:\\escape", "a/../../escape",
        "escape\x00.txt"]


def _snapshot(root: Path, skip: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if skip not in p.parents and p != skip}


# (method, path template, body builder): every route that takes a name in its body.
NAMED_BODIES = [
    ("/api/v1/projects", lambda n: {"name": n}),
    ("/api/v1/users", lambda n: {"name": n}),
    (f"{P}/datasets", lambda n: {"name": n, "type": "generic"}),
    (f"{P}/models", lambda n: {"name": n}),
    (f"{P}/deployments", lambda n: {"name": n, "model_ref": "m@1"}),
    (f"{P}/pipelines", lambda n: {"name": n, "steps": []}),
    (f"{P}/metrics/alerts", lambda n: {"name": n, "metric": "count", "op": ">",
                                       "threshold": 1, "window_s": 60}),
    (f"{P}/hpo/studies", lambda n: {"name": n, "trainer": "digits-cnn", "space": {}}),
]
# Routes whose path carries a name or key: (template with {x}, methods).
NAMED_PATHS = [
    ("/api/v1/projects/{x}", ["GET"]),
    (f"{P}/datasets/{{x}}", ["GET", "DELETE"]),
    (f"{P}/datasets/{{x}}/upload?format=csv", ["POST"]),
    (f"{P}/models/{{x}}", ["GET"]),
    (f"{P}/models/{{x}}/versions", ["POST"]),
    (f"{P}/deployments/{{x}}", ["GET", "DELETE"]),
    (f"{P}/pipelines/{{x}}", ["GET"]),
    (f"{P}/pipelines/{{x}}/runs", ["POST"]),
    (f"{P}/artifacts/{{x}}", ["GET", "HEAD"]),
    (f"{P}/artifacts/{{x}}/meta", ["GET"]),
    (f"{P}/training/code/{{x}}", ["GET"]),
    (f"{P}/jobs/{{x}}/checkpoint", ["GET", "PUT"]),
    (f"{P}/dataset-snapshots/{{x}}", ["GET"]),
    (f"{P}/metrics/alerts/{{x}}", ["GET"]),
    ("/v2/models/{x}", ["GET"]),
    ("/v2/models/{x}/infer", ["POST"]),
]


def test_traversal_in_names_is_refused_and_writes_nothing_outside(
        api: TestClient, client: object, tmp_path: Path, summary: Summary) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    home = platform.settings.home
    h = bearer(platform.settings.resolved_admin_token_file.read_text().strip())
    outside = _snapshot(tmp_path, home)
    tried, server_errors, failures = 0, 0, []
    for path, body in NAMED_BODIES:
        for name in EVIL:
            r = api.post(path, json=body(name), headers=h)
            tried += 1
            server_errors += r.status_code >= 500
            if not 400 <= r.status_code < 500:
                failures.append((path, name, r.status_code, r.text[:200]))
    for template, methods in NAMED_PATHS:
        # A bare `..` is resolved by the client itself (the raw-socket test below sends it as is);
        # no HTTP client sends a NUL in a URL.
        for name in EVIL[1:-1]:
            for method in methods:
                r = api.request(method, template.replace("{x}", name), headers=h, content=b"a,b\n1,2\n")
                tried += 1
                server_errors += r.status_code >= 500
                if not 400 <= r.status_code < 500:
                    failures.append((method, template, name, r.status_code, r.text[:200]))
    assert failures == [], "\n".join(map(str, failures))
    assert _snapshot(tmp_path, home) == outside  # nothing written beside the data dir
    assert not list(home.rglob("escape*")) and not list(home.rglob("passwd"))
    summary.add("hostile", traversal_requests=tried, server_errors=server_errors)


def test_artifact_and_run_names_with_traversal_stay_labels(
        api: TestClient, client: object, tmp_path: Path, summary: Summary) -> None:
    """Artifact names, model file names and experiments are labels: stored, never a path."""
    platform = api.app.state.platform  # type: ignore[attr-defined]
    home = platform.settings.home
    h = bearer(platform.settings.resolved_admin_token_file.read_text().strip())
    outside = _snapshot(tmp_path, home)
    for name in EVIL:
        r = api.post(f"{P}/artifacts", params={"name": name}, content=name.encode() + b"!",
                     headers=h)
        assert r.status_code == 201 or 400 <= r.status_code < 500, r.text
        r = api.post(f"{P}/runs", json={"experiment": name}, headers=h)  # a label too
        assert r.status_code == 201 or 400 <= r.status_code < 500, r.text
    # a model version's file names (the names of a job's uploaded model files) are labels too
    digest = api.post(f"{P}/artifacts", content=b"weights", headers=h).json()["digest"]
    assert api.post(f"{P}/models", json={"name": "m"}, headers=h).status_code == 201
    r = api.post(f"{P}/models/m/versions", json={"artifacts": {n: digest for n in EVIL}},
                 headers=h)
    assert r.status_code == 201 or 400 <= r.status_code < 500, r.text
    assert _snapshot(tmp_path, home) == outside
    assert not list(home.rglob("escape*")) and not list(home.rglob("passwd"))
    summary.add("hostile", traversal_requests=2 * len(EVIL) + 1)


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.mark.parametrize("member", ["../evil.py", "/abs/evil.py", "a/../../evil.py"])
def test_code_package_whose_member_escapes_is_refused_at_upload(
        api: TestClient, client: object, member: str) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    h = bearer(platform.settings.resolved_admin_token_file.read_text().strip())
    r = api.post(f"{P}/training/code", content=_zip({"train.py": "print(1)", member: "x"}),
                 headers=h)
    assert r.status_code == 400, r.text
    assert "escapes" in r.json()["error"]["message"]


DEEP = ["[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000,
        '{"a":' * 900 + "1" + "}" * 900]


def _json_routes(api: TestClient) -> list[tuple[str, str]]:
    doc = api.get("/openapi.json").json()
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "application/json" in op.get("requestBody", {}).get("content", {}):
                out.append((method.upper(), path.replace("{project}", "alpha")))
    return out


def _fill_ids(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "x1", path)


def test_deep_json_on_every_json_route_is_4xx(api: TestClient, client: object,
                                              summary: Summary) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    h = {**bearer(platform.settings.resolved_admin_token_file.read_text().strip()),
         "content-type": "application/json"}
    nested_in_fields = ['{"events": [{"deployment": "d", "model": "m", "version": 1, '
                        '"latency_ms": 1, "request_id": "r", "input_summary": %s}]}',
                        '{"experiment": "e", "params": %s}', '{"name": "n", "config": %s}']
    failures, tried = [], 0
    for method, path in _json_routes(api):
        # 10,000 levels anywhere: refused. 900 levels inside a free-form field: stored or
        # refused, but never a 5xx.
        for body, refused in [(b, True) for b in DEEP[:2]] + [
                (t % d, d is not DEEP[2]) for t in nested_in_fields for d in DEEP]:
            r = api.request(method, _fill_ids(path), content=body, headers=h)
            tried += 1
            if r.status_code >= 500 or (refused and r.status_code < 400):
                failures.append((method, path, body[:40], r.status_code, r.text[:200]))
    assert failures == []
    assert api.get("/readyz").status_code == 200
    summary.add("hostile", deep_json_requests=tried, server_errors=0)



def test_deep_json_no_body_guard_sees_is_4xx_and_stores_nothing(
        api: TestClient, client: object, summary: Summary) -> None:
    """JSON the app's body guard never sees (it checks JSON bodies): an uploaded JSON or JSONL
    file, a v2 binary request's JSON header, a multipart form field, a page token."""
    h = bearer(api.app.state.platform.settings.resolved_admin_token_file.read_text().strip())  # type: ignore[attr-defined]
    deep = DEEP[0].encode()
    assert api.post(f"{P}/datasets", json={"name": "talk", "type": "text_intent"},
                    headers=h).status_code == 201
    assert api.post(f"{P}/datasets", json={"name": "files", "type": "generic"},
                    headers=h).status_code == 201
    token = base64.urlsafe_b64encode(deep).decode().rstrip("=")
    head = b'{"inputs": ' + deep + b"}"
    answers = [
        api.post(f"{P}/datasets/talk/upload", params={"format": "json"}, headers=h,
                 content=b'[{"text": ' + deep + b', "labels": "a"}]'),
        api.post(f"{P}/datasets/talk/upload", params={"format": "jsonl"}, headers=h,
                 content=b'{"text": "hi", "labels": "a"}\n{"text": ' + deep + b"}\n"),
        api.post("/v2/models/any/infer", content=head,
                 headers={**h, "X-Modelyard-Project": "alpha",
                          "content-type": "application/octet-stream",
                          "Inference-Header-Content-Length": str(len(head))}),
        api.post(f"{P}/jobs/job_none/model", headers=h, data={"meta": DEEP[1]},
                 files=[("files", ("model.onnx", b"x", "application/octet-stream"))]),
        api.get(f"{P}/runs", params={"page_token": token}, headers=h),
        # a generic row's metadata may come as a JSON string
        api.post(f"{P}/datasets/files/upload", params={"format": "csv"}, headers=h,
                 content=b"file,metadata\na.bin," + DEEP[0].encode() + b"\n"),
    ]
    assert [r.status_code for r in answers] == [400] * len(answers), \
        [(r.status_code, r.text[:200]) for r in answers]
    assert "deep" in answers[0].json()["error"]["message"]
    assert answers[1].json()["error"]["details"]["rows"] == [1]
    assert "metadata" in answers[-1].text
    for name in ("talk", "files"):  # nothing stored
        assert api.get(f"{P}/datasets/{name}/versions", headers=h).json() == []
    summary.add("hostile", deep_json_requests=len(answers), server_errors=0)

def test_invalid_utf8_bodies_are_4xx(api: TestClient, client: object, summary: Summary) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    h = {**bearer(platform.settings.resolved_admin_token_file.read_text().strip()),
         "content-type": "application/json"}
    bodies = [b'{"name": "\xff\xfe"}', b"\xc3\x28", b'{"name": "\xed\xa0\x80"}']
    tried = 0
    for method, path in _json_routes(api):
        for body in bodies:
            r = api.request(method, _fill_ids(path), content=body, headers=h)
            tried += 1
            assert 400 <= r.status_code < 500, (method, path, body, r.status_code, r.text[:200])
    # and in query strings and percent-encoded path segments
    for url in [f"{P}/datasets/%ff%fe", "/api/v1/projects/%c3%28", f"{P}/artifacts?limit=%ff",
                f"{P}/models/%ed%a0%80/versions"]:
        r = api.get(url, headers=h)
        tried += 1
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:200])
    summary.add("hostile", invalid_utf8_requests=tried, server_errors=0)


def _raw(port: int, request: bytes) -> int:
    """Sends bytes as they are (no client normalizes the path) and returns the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Settings]:
    with live_server(Settings(home=tmp_path / "home", background=False)) as s:
        token = s.resolved_admin_token_file.read_text().strip()
        import httpx

        httpx.post(f"{s.resolved_public_url}/api/v1/projects", json={"name": "alpha"},
                   headers=bearer(token), timeout=30).raise_for_status()
        yield s


def test_raw_paths_with_dot_segments_and_bad_bytes_are_4xx(
        live: Settings, tmp_path: Path, summary: Summary) -> None:
    token = live.resolved_admin_token_file.read_text().strip()
    outside = _snapshot(tmp_path, live.home)
    paths = [b"/api/v1/projects/alpha/artifacts/../../../../admin-token",
             b"/api/v1/projects/alpha/training/code/../../../../../etc/passwd",
             b"/api/v1/projects/../projects/alpha/datasets/..",
             b"/api/v1/projects/alpha/datasets/\xff\xfe",
             b"/api/v1/projects/alpha/models/..\\..\\x",
             b"/ui/static/../../../../../etc/passwd",
             b"/ui/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
             b"/ui/static/..%2f..%2f..%2fserver%2fapp.py"]
    codes = {}
    for path in paths:
        for method in (b"GET", b"DELETE"):
            req = (method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Authorization: Bearer " + token.encode() + b"\r\nConnection: close\r\n\r\n")
            codes[(method, path)] = _raw(live.port, req)
    assert all(400 <= c < 500 for c in codes.values()), codes
    assert _snapshot(tmp_path, live.home) == outside
    summary.add("hostile", raw_path_requests=len(codes), server_errors=0)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[TestClient]:
    s = Settings(home=tmp_path / "home", background=False, api=ApiSettings(max_body_bytes=4096))
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        c.headers.update(bearer(s.resolved_admin_token_file.read_text().strip()))
        assert c.post("/api/v1/projects", json={"name": "alpha"}).status_code == 201
        assert c.post(f"{P}/datasets", json={"name": "t", "type": "generic"}).status_code == 201
        yield c


def test_streamed_uploads_over_the_limit_are_413_and_store_nothing(
        small: TestClient, summary: Summary) -> None:
    def big() -> Iterator[bytes]:
        yield b"a,b\n"
        for i in range(100):
            yield f"{i},{i}\n".encode() * 20

    for url in [f"{P}/artifacts?name=big", f"{P}/datasets/t/upload?format=csv",
                f"{P}/training/code", f"{P}/metrics/events"]:
        r = small.post(url, content=big())
        assert r.status_code == 413, (url, r.text[:200])
        assert r.json()["error"]["code"] == "payload_too_large"
        r = small.post(url, content=b"x" * 5000)  # declared length over the limit
        assert r.status_code == 413, (url, r.text[:200])
    assert small.get(f"{P}/artifacts").json() == []
    assert small.get(f"{P}/datasets/t/versions").json()["items"] == [] if isinstance(
        small.get(f"{P}/datasets/t/versions").json(), dict) else \
        small.get(f"{P}/datasets/t/versions").json() == []
    summary.add("hostile", oversized_requests=8, server_errors=0)


@pytest.mark.parametrize("url", [
    f"{P}/artifacts?offset=99999999999999999999999",
    f"{P}/artifacts:gc?retention_s=1e308",
    f"{P}/artifacts:gc?retention_s=inf",
    f"{P}/datasets/gc?retention_days=inf",
    f"{P}/jobs/j1/logs?offset=99999999999999999999999",
])
def test_out_of_range_numbers_are_400(api: TestClient, client: object, url: str) -> None:
    """Found by the fuzzer: these overflowed in SQLite, timedelta or int() and answered 500."""
    platform = api.app.state.platform  # type: ignore[attr-defined]
    h = bearer(platform.settings.resolved_admin_token_file.read_text().strip())
    method = "POST" if "gc" in url else "GET"
    r = api.request(method, url, headers=h)
    assert r.status_code == 400, r.text


@pytest.mark.parametrize(("body", "deep"), [
    (b"[[[]]]", False),
    (b"[[[[]]]]", True),
    (b'{"a": "[[[[[[[[", "b": [1]}', False),  # brackets inside strings do not count
    (b'{"a": "\\\\\\"[[[[[", "b": "]]]]\\\\"}', False),  # nor behind escaped quotes
    (b'{"a": "\\\\", "b": [[[[1]]]]}', True),
])
def test_json_depth_counts_only_structure(body: bytes, deep: bool) -> None:
    from modelyard.server.limits import json_too_deep

    assert json_too_deep(body, limit=3) is deep
