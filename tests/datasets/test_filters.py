"""Delete/replace filters: one complete condition or a 400; nothing partial is ever applied."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import InvalidArgument
from modelyard.sdk.client import Client


@pytest.fixture
def iris(client: Client) -> Client:
    client.datasets.import_builtin("iris", "sklearn:iris")
    return client


@pytest.mark.parametrize("where", [
    "1=1; DROP TABLE x",  # a second statement
    "target = 'setosa'; ",  # a stray semicolon
    "target = 'setosa') OR (1=1",  # Lance read up to the first ')' and dropped the rest
    "target = 'setosa' junk",  # a name for the result
    "sepal_length__cm > 5 ORDER BY target",  # a clause of a query
    "target IN (SELECT 1)",  # a subquery
    "target = ?",  # a bind parameter
])
def test_a_filter_with_anything_past_one_condition_is_refused_and_deletes_nothing(
        iris: Client, api: TestClient, admin_token: str, where: str) -> None:
    r = api.post("/api/v1/projects/alpha/datasets/iris/commits",
                 json={"mode": "delete", "where": where},
                 headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == "where"
    assert [v["version"] for v in iris.datasets.versions("iris")] == [1]
    assert iris.datasets.stats("iris")["row_count"] == 150


def test_a_replace_with_a_bad_filter_changes_nothing(iris: Client) -> None:
    row = {**iris.datasets.rows("iris", limit=1)[0]}
    new = {k: v for k, v in row.items() if k not in ("row_id", "row_hash")}
    with pytest.raises(InvalidArgument):
        iris.datasets.replace_rows("iris", [new], where="1=1; DROP TABLE x")
    assert iris.datasets.stats("iris")["row_count"] == 150


@pytest.mark.parametrize(("where", "left"), [
    ("target = 'setosa'", 100),
    ('target = "setosa" -- a comment', 100),
    ("`target` IN ('setosa', 'virginica')", 50),
    ("target <> 'setosa' AND NOT (sepal_length__cm > 100)", 50),
    ("CAST(sepal_length__cm AS STRING) LIKE '5.%' AND target IS NOT NULL", 150 - 61),
])
def test_well_formed_filters_delete_exactly_their_rows(iris: Client, where: str, left: int) -> None:
    c = iris.datasets.delete_rows("iris", where=where)
    assert (c["row_count"], c["rows_removed"]) == (left, 150 - left)
