"""The `tabular` preprocessing spec: named raw features -> one float row per input.

`{"kind": "tabular", "features": [{"name", "type": float|int|bool|string,
"categories": [...] (strings only)}], "task": "classification"|"regression", "labels": [...]}`

A raw input is an object of every feature by name (`{"age": 41, "city": "Oslo"}`) or a row
of values in the spec's feature order. Values are checked against their declared types; a
missing, extra or ill-typed feature is a 400 naming it. `null` is a missing value. The row
the network gets holds each number as is (bools as 0/1), each string as its index among
`categories` (-1 when unknown) and NaN where a value is missing: what the model learned on the
train split (standardisation, imputation, one-hot encoding) is part of the exported network,
so this transform stays a lookup.

Classification decodes like the other kinds (the best label and its softmax probability);
regression answers the predicted number as the label's text, with confidence 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.core.errors import InvalidArgument
from modelyard.preprocessing import top_class

FEATURE_TYPES = ("float", "int", "bool", "string")


class TabularPreprocessor:
    def __init__(self, features: list[dict[str, Any]], task: str, labels: list[str]) -> None:
        if task not in ("classification", "regression"):
            raise InvalidArgument(f"tabular task {task!r}: use classification or regression",
                                  {"field": "preprocessing.task"})
        for f in features:
            if f.get("type") not in FEATURE_TYPES or not isinstance(f.get("name"), str):
                raise InvalidArgument(f"tabular feature {f!r}: needs a name and a type among "
                                      f"{list(FEATURE_TYPES)}", {"field": "preprocessing.features"})
        self.features = [dict(f) for f in features]
        self.names = [str(f["name"]) for f in features]
        self.task, self.labels = task, labels
        self._index = {n: i for i, n in enumerate(self.names)}
        self._codes = [{c: float(k) for k, c in enumerate(f.get("categories") or [])}
                       for f in self.features]
        self._numeric = [i for i, f in enumerate(self.features) if f["type"] != "string"]

    def spec(self) -> dict[str, Any]:
        return {"kind": "tabular", "features": self.features, "task": self.task,
                "labels": self.labels}

    def transform(self, raw_inputs: Sequence[Any]) -> np.ndarray:
        out = np.empty((len(raw_inputs), len(self.names)), dtype=np.float32)
        for i, raw in enumerate(raw_inputs):
            out[i] = self._row(raw, i)
        return out

    def _row(self, raw: Any, i: int) -> list[float]:
        if isinstance(raw, dict):
            extra = [k for k in raw if k not in self._index]
            if extra:
                raise InvalidArgument(
                    f"input {i}: unknown feature {str(extra[0])[:100]!r}: this model takes "
                    f"{self.names}", {"index": i, "feature": str(extra[0])[:100]})
            missing = [n for n in self.names if n not in raw]
            if missing:
                raise InvalidArgument(
                    f"input {i}: feature {missing[0]!r} is missing (send null for an unknown "
                    f"value); this model takes {self.names}", {"index": i, "feature": missing[0]})
            values = [raw[n] for n in self.names]
        elif isinstance(raw, list):
            if len(raw) != len(self.names):
                raise InvalidArgument(
                    f"input {i}: a row of {len(raw)} values; this model takes {len(self.names)}, "
                    f"in this order: {self.names}", {"index": i})
            values = raw
        else:
            raise InvalidArgument(f"input {i}: send an object of named features or a row of "
                                  f"values in the order {self.names}", {"index": i})
        return [self._value(v, k, i) for k, v in enumerate(values)]

    def _value(self, v: Any, k: int, i: int) -> float:
        if v is None:
            return math.nan
        kind = self.features[k]["type"]
        if kind == "string":
            if isinstance(v, str):
                return self._codes[k].get(v, -1.0)
        elif kind == "bool":
            if isinstance(v, bool):
                return float(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and (
                kind == "float" or float(v).is_integer()):
            f = float(v)
            if math.isfinite(f):
                return f
        name = self.names[k]
        raise InvalidArgument(f"input {i}: feature {name!r} must be {_article(kind)}, got "
                              f"{str(v)[:50]!r}", {"index": i, "feature": name})

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        if self.task == "regression":
            values = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)[:, 0]
            return [{"label": f"{v:.6g}", "confidence": 1.0} for v in values.tolist()]
        labels = self.labels
        best, confidence = top_class(logits)
        return [{"label": labels[j] if j < len(labels) else str(j), "confidence": c}
                for j, c in zip(best, confidence, strict=True)]

    def summaries(self, batch: np.ndarray) -> list[dict[str, Any]]:
        """Per row: the mean and std of its numeric features (what input drift reads for any
        model) and each numeric feature's value by name (per-feature drift)."""
        out = []
        names = [self.names[k] for k in self._numeric]
        for row in np.asarray(batch, dtype=np.float64)[:, self._numeric].tolist():
            known = [v for v in row if v == v]  # NaN: a missing value
            mean = sum(known) / len(known) if known else 0.0
            std = math.sqrt(max(sum(v * v for v in known) / len(known) - mean * mean, 0.0)) \
                if known else 0.0
            out.append({"mean": round(mean, 5), "std": round(std, 5),
                        "features": {n: round(v, 6) for n, v in zip(names, row, strict=True)
                                     if v == v}})
        return out


def _article(kind: str) -> str:
    return {"float": "a number", "int": "an integer", "bool": "true or false",
            "string": "a string"}[kind]


def build(spec: dict[str, Any]) -> TabularPreprocessor:
    features = spec.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidArgument("a tabular preprocessing spec needs `features`: "
                              "[{name, type, categories?}]", {"field": "preprocessing.features"})
    return TabularPreprocessor(features, str(spec.get("task", "classification")),
                               list(spec.get("labels", [])))
