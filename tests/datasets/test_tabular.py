"""The tabular type: strict config, an id column, empty cells and targets, column statistics."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import InvalidArgument
from modelyard.datasets.types import get_type
from tests.conftest import Team, bearer

CONFIG = {"columns": {"id": "int", "x": "float", "city": "string", "y": "string"},
          "target": "y", "id": "id"}


def test_an_unknown_config_key_is_refused_naming_it() -> None:
    with pytest.raises(InvalidArgument) as e:
        get_type("tabular", {**CONFIG, "id_column": "id"})
    assert "id_column" in e.value.message and e.value.details["field"] == "config.id_column"
    with pytest.raises(InvalidArgument) as e:
        get_type("text_intent", {"lowercase": True})
    assert e.value.details["field"] == "config.lowercase"


def test_the_id_column_is_kept_but_never_a_feature() -> None:
    kind = get_type("tabular", CONFIG)
    assert list(kind.features) == ["x", "city"]  # type: ignore[attr-defined]
    row = kind.training_row({"id": 7, "x": 1.5, "city": "oslo", "y": "b", "row_id": "r",
                             "row_hash": "h"}, ["a", "b"])
    assert row == {"features": [1.5], "values": {"x": 1.5, "city": "oslo"}, "label": 1}
    with pytest.raises(InvalidArgument):
        get_type("tabular", {**CONFIG, "id": "y"})  # the target cannot be the id


def test_empty_feature_cells_are_nulls_but_an_empty_target_is_refused() -> None:
    kind = get_type("tabular", CONFIG)
    table = kind.validate([{"id": "1", "x": "", "city": None, "y": "a"}])
    assert table.to_pylist() == [{"id": 1, "x": None, "city": None, "y": "a"}]
    assert math.isnan(kind.training_row({**table.to_pylist()[0]}, ["a"])["features"][0])
    with pytest.raises(InvalidArgument) as e:
        kind.validate([{"id": "1", "x": "2", "city": "a", "y": "a"},
                       {"id": "2", "x": "2", "city": "a", "y": " "}], offset=5)
    assert e.value.details["rows"] == [6] and e.value.details["fields"] == ["y"]
    assert "target is empty" in e.value.message


def test_column_statistics() -> None:
    kind = get_type("tabular", CONFIG)
    table = kind.validate([{"id": i, "x": x, "city": c, "y": "a"} for i, (x, c) in
                           enumerate([(1.0, "oslo"), (3.0, "oslo"), ("", "rome"), (5.0, "")])])
    stats = kind.summary(table)["columns"]
    assert stats["x"] == {"type": "float", "count": 3, "nulls": 1, "min": 1.0, "max": 5.0,
                          "mean": 3.0, "std": pytest.approx(1.632993, abs=1e-6)}
    assert stats["city"] == {"type": "string", "count": 3, "nulls": 1, "distinct": 2,
                             "top": {"oslo": 2, "rome": 1}}


def test_api_stats_per_version_and_an_empty_target_stores_nothing(api: TestClient,
                                                                  team: Team) -> None:
    h = bearer(team.editor)
    base = "/api/v1/projects/alpha/datasets"
    bad = api.post(base, json={"name": "t", "type": "tabular",
                               "config": {**CONFIG, "id_column": "id"}}, headers=h)
    assert bad.status_code == 400 and "id_column" in bad.json()["error"]["message"]
    assert api.post(base, json={"name": "t", "type": "tabular", "config": CONFIG},
                    headers=h).status_code == 201
    rows = [{"id": 1, "x": 2.0, "city": "oslo", "y": "a"}, {"id": 2, "x": 4.0, "city": "", "y": "b"}]
    assert api.post(f"{base}/t/commits", json={"rows": rows}, headers=h).status_code == 201
    r = api.post(f"{base}/t/commits", json={"rows": [{"id": 3, "x": 1, "city": "a", "y": ""}]},
                 headers=h)
    assert r.status_code == 400 and r.json()["error"]["details"]["fields"] == ["y"]
    stats = api.get(f"{base}/t/stats", headers=h).json()
    assert stats["version"] == 1 and stats["row_count"] == 2  # nothing of the bad commit
    assert stats["summary"]["columns"]["x"]["mean"] == 3.0
    assert stats["summary"]["columns"]["city"]["nulls"] == 1
