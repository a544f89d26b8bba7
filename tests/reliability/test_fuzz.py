"""Property-based fuzzing of the whole OpenAPI document with schemathesis: no 5xx anywhere.

Every operation of the app's own `/openapi.json` gets schema-valid and schema-violating
requests (hypothesis, derandomized so CI sees the same cases each run), authenticated as the
superuser, on project `alpha` holding a dataset, a model with a version and alias, an artifact,
a run and a metric alert, so the generated requests reach real objects and not only 404s.
The check is schemathesis' `not_a_server_error`. tests/server/test_errors.py adds fixed
nonsense bodies on every route; tests/server/test_authz_matrix.py the role matrix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, Phase, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from modelyard.core.settings import Settings  # noqa: E402
from modelyard.server.app import create_app  # noqa: E402
from tests.conftest import bearer  # noqa: E402
from tests.reliability.conftest import Summary  # noqa: E402

EXAMPLES_PER_OPERATION = 25

# Skipped, each for a reason: these would hold a worker until a timeout, not answer.
SKIP = {
    ("GET", "/api/v1/projects/{project}/jobs/{job_id}/logs"):
        "follow=true streams the log until the job ends (a long poll); its plain form is "
        "called in tests/server/test_errors.py and tests/training",
}
P = "/api/v1/projects/alpha"


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    app = create_app(Settings(home=home, background=False))
    with TestClient(app, raise_server_exceptions=False) as api:
        h = bearer((home / "admin-token").read_text().strip())
        _populate(api, h)
        yield app, h


def _populate(api: TestClient, h: dict[str, str]) -> None:
    def ok(r: Any) -> Any:
        assert r.status_code < 300, r.text
        return r.json()

    ok(api.post("/api/v1/projects", json={"name": "alpha"}, headers=h))
    ok(api.post("/api/v1/users", json={"name": "vic"}, headers=h))
    ok(api.put(f"{P}/members", json={"user": "vic", "role": "viewer"}, headers=h))
    ok(api.post(f"{P}/datasets", json={"name": "t", "type": "generic"}, headers=h))
    data = b"fuzz artifact"
    digest = ok(api.post(f"{P}/artifacts", params={"name": "a"}, content=data, headers=h))["digest"]
    assert digest == hashlib.sha256(data).hexdigest()
    ok(api.post(f"{P}/models", json={"name": "m"}, headers=h))
    ok(api.post(f"{P}/models/m/versions", json={"artifacts": {"model.onnx": digest}}, headers=h))
    ok(api.put(f"{P}/models/m/aliases/production", json={"version": 1}, headers=h))
    ok(api.post(f"{P}/runs", json={"experiment": "e", "params": {"lr": 0.1}}, headers=h))
    ok(api.post(f"{P}/metrics/alerts", json={"name": "slow", "metric": "latency_p95", "op": ">",
                                            "threshold": 100, "window_s": 60}, headers=h))


def test_no_operation_answers_a_server_error(fuzz_app: tuple[Any, dict[str, str]],
                                            summary: Summary) -> None:
    app, h = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    fuzzed: list[str] = []
    cases = 0
    for result in schema.get_all_operations():
        op = result.ok()
        key = (op.method.upper(), op.path)
        if key in SKIP:
            continue
        pinned = {"project": "alpha"} if "{project}" in op.path else None
        strategy = (op.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned)
                    | op.as_strategy(GenerationMode.NEGATIVE))
        tried = 0

        @hsettings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                   database=None, phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case: Any) -> None:
            nonlocal tried
            tried += 1
            case.call_and_validate(headers=h, checks=[not_a_server_error])

        try:
            run()
        except Exception as e:  # noqa: BLE001 - collect every operation's failure, then report
            failures[f"{key[0]} {key[1]}"] = str(e)[:800]
        fuzzed.append(f"{key[0]} {key[1]}")
        cases += tried
    summary.add("fuzz", operations_fuzzed=len(fuzzed), operations_skipped=sorted(
        f"{m} {p}: {why}" for (m, p), why in SKIP.items()), cases_tried=cases,
        examples_per_operation=EXAMPLES_PER_OPERATION, server_errors=len(failures))
    assert len(fuzzed) >= 100  # the whole API, not a corner of it
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_the_fuzzed_app_is_still_healthy_afterwards(fuzz_app: tuple[Any, dict[str, str]]) -> None:
    app, h = fuzz_app
    with TestClient(app, raise_server_exceptions=False) as api:
        assert api.get("/readyz").status_code == 200
        assert api.get(f"{P}/models/m/resolve", params={"ref": "m@production"},
                       headers=h).status_code in (200, 404)
