"""Every integer a request carries fits in 64 bits, or the answer is a 400 naming the field.

Past that range SQLite and PostgreSQL fail to bind it (a 500) and Arrow cannot encode it. The
bound is enforced once, at the API edge, for every route: integer query and path parameters
(by their declared type) and every integer in a JSON body.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modelyard.sdk.client import Client
from tests.conftest import bearer

HUGE = "10000000000000000000000000"  # 10^25


@pytest.fixture
def iris(client: Client) -> Client:
    client.datasets.import_builtin("iris", "sklearn:iris")
    return client


@pytest.mark.parametrize(("method", "path", "field"), [
    ("GET", f"/datasets/iris/diff?from={HUGE}&to=1", "from"),
    ("GET", f"/datasets/iris/diff?from=1&to=-{HUGE}", "to"),
    ("GET", f"/datasets/iris/rows?offset={HUGE}", "offset"),
    ("GET", f"/datasets/iris/stats?version={HUGE}", "version"),
    ("GET", f"/datasets/iris/versions/{HUGE}", "version"),
    ("GET", f"/models/m/versions/{HUGE}", "version"),
])
def test_a_huge_integer_parameter_is_a_400_naming_it(iris: Client, api: TestClient,
                                                     admin_token: str, method: str, path: str,
                                                     field: str) -> None:
    r = api.request(method, f"/api/v1/projects/alpha{path}", headers=bearer(admin_token))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["details"]["field"] == field and field in err["message"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/training/quota", {"max_jobs": 2 * 10**23}, "max_jobs"),
    ("/datasets/iris/snapshots", {"version": 10**25}, "version"),
    ("/datasets/iris/snapshots", {"seed": 1, "fractions": {"train": 1, "validation": 0,
                                                           "test": -10**30}},
     "fractions.test"),
])
def test_a_huge_integer_in_a_json_body_is_a_400_naming_it(iris: Client, api: TestClient,
                                                          admin_token: str, path: str,
                                                          body: dict, field: str) -> None:
    method = "PUT" if path.endswith("quota") else "POST"
    r = api.request(method, f"/api/v1/projects/alpha{path}", json=body,
                    headers=bearer(admin_token))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == field
    assert iris.datasets.list_snapshots("iris") == []
    assert api.get("/api/v1/projects/alpha/training/quota",
                   headers=bearer(admin_token)).json().get("max_jobs") is None


def test_the_largest_64_bit_integers_still_pass(iris: Client, api: TestClient,
                                               admin_token: str) -> None:
    r = api.get(f"/api/v1/projects/alpha/datasets/iris/versions/{2**63 - 1}",
                headers=bearer(admin_token))
    assert r.status_code == 404, r.text
    r = api.get("/api/v1/projects/alpha/datasets/iris/rows?offset=9223372036854775807",
                headers=bearer(admin_token))
    assert r.status_code == 200 and r.json() == []
    big_string = {"name": "x", "description": HUGE}  # digits inside a string are text
    assert api.post("/api/v1/projects/alpha/datasets", json={**big_string, "type": "generic"},
                    headers=bearer(admin_token)).status_code == 201
