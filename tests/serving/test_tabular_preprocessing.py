"""The `tabular` preprocessing spec: named features (objects or rows) in, 400s naming a bad
feature, labels or numbers out, per-feature summaries for drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelyard import preprocessing
from modelyard.core.errors import InvalidArgument

SPEC = {"kind": "tabular", "task": "classification", "labels": ["no", "yes"],
        "features": [{"name": "age", "type": "int"}, {"name": "income", "type": "float"},
                     {"name": "owner", "type": "bool"},
                     {"name": "city", "type": "string", "categories": ["oslo", "rome"]}]}


def test_objects_and_rows_give_the_same_network_input() -> None:
    pre = preprocessing.build(SPEC)
    x = pre.transform([{"age": 40, "income": 2.5, "owner": True, "city": "rome"},
                       [40, 2.5, True, "rome"],
                       {"age": None, "income": 1, "owner": False, "city": "paris"}])
    assert x.dtype == np.float32
    assert x[0].tolist() == x[1].tolist() == [40.0, 2.5, 1.0, 1.0]
    assert math.isnan(x[2][0]) and x[2][3] == -1.0  # missing; unknown category


@pytest.mark.parametrize(("raw", "feature", "words"), [
    ({"age": 1, "income": 1.0, "owner": True}, "city", "missing"),
    ({"age": 1, "income": 1.0, "owner": True, "city": "oslo", "zip": 1}, "zip", "unknown"),
    ({"age": 1.5, "income": 1.0, "owner": True, "city": "oslo"}, "age", "an integer"),
    ({"age": 1, "income": "1.0", "owner": True, "city": "oslo"}, "income", "a number"),
    ({"age": 1, "income": 1.0, "owner": 1, "city": "oslo"}, "owner", "true or false"),
    ({"age": 1, "income": 1.0, "owner": True, "city": 3}, "city", "a string"),
], ids=["missing", "extra", "int", "float", "bool", "string"])
def test_a_missing_extra_or_ill_typed_feature_is_refused_naming_it(
        raw: dict[str, object], feature: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        preprocessing.build(SPEC).transform([{"age": 1, "income": 1.0, "owner": True,
                                              "city": "oslo"}, raw])
    assert e.value.details == {"index": 1, "feature": feature}
    assert repr(feature) in e.value.message and words in e.value.message


def test_a_row_of_the_wrong_length_names_the_order() -> None:
    with pytest.raises(InvalidArgument) as e:
        preprocessing.build(SPEC).transform([[1, 2.0]])
    assert "['age', 'income', 'owner', 'city']" in e.value.message


def test_decoding_classes_and_numbers() -> None:
    assert preprocessing.build(SPEC).decode(np.array([[0.0, 2.0]]))[0]["label"] == "yes"
    reg = preprocessing.build({**SPEC, "task": "regression", "labels": []})
    assert reg.decode(np.array([[151.25], [3.0]])) == [
        {"label": "151.25", "confidence": 1.0}, {"label": "3", "confidence": 1.0}]


def test_summaries_hold_each_numeric_feature_by_name() -> None:
    pre = preprocessing.build(SPEC)
    x = pre.transform([{"age": 40, "income": None, "owner": True, "city": "oslo"}])
    (summary,) = pre.summaries(x)  # type: ignore[attr-defined]
    assert summary["features"] == {"age": 40.0, "owner": 1.0}  # a missing value is left out
    assert summary["mean"] == 20.5
