"""The `tabular` dataset type: declared columns, a target, an optional id column.

Config (strict: any other key is a 400 naming it):
- `columns`: name -> float | int | string | bool
- `target`: the column to predict; a string, int or bool target is a class label, a float one a
  number. A row with an empty target is refused (a label `''` would become a class).
- `id`: optionally a column that identifies a row; it is stored, but is never a feature (an id
  that follows the row order leaks the label of a sorted file).

Feature cells may be empty (null, or `''` in a CSV): they are stored as nulls and the trainer
fills them in.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from modelyard.core.errors import InvalidArgument
from modelyard.datasets.types import (
    MAX_TEXT_CHARS,
    RESERVED,
    DatasetType,
    RowErrors,
    _check_keys,
    _label_index,
)

COLUMN_TYPES = {"float": pa.float64(), "int": pa.int64(), "string": pa.string(),
                "bool": pa.bool_()}
NUMERIC = ("float", "int", "bool")
TOP_VALUES = 10  # most frequent values shown per string column
_CONFIG_KEYS = ("columns", "target", "id")


class Tabular(DatasetType):
    """Declared columns (`config.columns`: name -> float|int|string|bool) and a target column."""

    name = "tabular"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        for key in self.config:
            if key not in _CONFIG_KEYS:
                raise InvalidArgument(
                    f"unknown tabular config key {key!r}: use {', '.join(_CONFIG_KEYS)} "
                    "(`id` names a column that is not a feature)", {"field": f"config.{key}"})
        cols = self.config.get("columns")
        target = self.config.get("target")
        if not isinstance(cols, dict) or not cols:
            raise InvalidArgument("a tabular dataset needs config.columns: {name: float|int|string|bool}",
                                  {"field": "config.columns"})
        for c, t in cols.items():
            if t not in COLUMN_TYPES:
                raise InvalidArgument(f"column {c!r} has type {t!r}: use one of {list(COLUMN_TYPES)}",
                                      {"field": f"config.columns.{c}"})
            if c in RESERVED or not isinstance(c, str) or not c or len(c) > 100:
                raise InvalidArgument(f"column name {c!r} is reserved or invalid",
                                      {"field": "config.columns"})
        if target not in cols:
            raise InvalidArgument("config.target must name one of config.columns",
                                  {"field": "config.target"})
        id_col = self.config.get("id")
        if id_col is not None and (id_col not in cols or id_col == target):
            raise InvalidArgument("config.id must name one of config.columns other than the target",
                                  {"field": "config.id"})
        self.columns: dict[str, str] = dict(cols)
        self.target: str = str(target)
        self.id_column: str | None = id_col
        if not self.features:
            raise InvalidArgument("a tabular dataset needs at least one feature column besides "
                                  "the target and the id", {"field": "config.columns"})

    @property
    def features(self) -> dict[str, str]:
        """The columns a model learns from: all but the target and the id, in declared order."""
        return {c: t for c, t in self.columns.items() if c not in (self.target, self.id_column)}

    @property
    def task(self) -> str:
        return "regression" if self.columns[self.target] == "float" else "classification"

    @property
    def label_field(self) -> str | None:  # type: ignore[override]
        return self.target if self.task == "classification" else None

    @property
    def summary_columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.columns)

    def schema(self) -> pa.Schema:
        return pa.schema([(c, COLUMN_TYPES[t]) for c, t in self.columns.items()])

    def validate(self, rows: list[dict[str, Any]], offset: int = 0) -> pa.Table:
        errors = RowErrors()
        out: dict[str, list[Any]] = {c: [] for c in self.columns}
        names = tuple(self.columns)
        for j, row in enumerate(rows):
            i = offset + j
            if isinstance(row, dict):  # a null is an empty cell; a missing key stays an error
                row = {k: "" if v is None else v for k, v in row.items()}
            if not _check_keys(errors, i, row, names):
                continue
            vals: dict[str, Any] = {}
            for c, t in self.columns.items():
                raw = row[c]
                if _empty(raw):
                    if c == self.target:
                        errors.add(i, c, "the target is empty: every row needs one; drop the "
                                   "row or fill it in")
                    else:
                        vals[c] = None
                    continue
                v = _coerce(raw, t)
                if v is None:
                    errors.add(i, c, f"must be {t}, got {str(raw)[:50]!r}")
                elif t == "string" and len(v) > MAX_TEXT_CHARS:
                    errors.add(i, c, f"is {len(v)} characters long; the limit is {MAX_TEXT_CHARS}")
                else:
                    vals[c] = v
            if len(vals) == len(self.columns):
                for c, v in vals.items():
                    out[c].append(v)
        errors.raise_if_any()
        return pa.table(out, schema=self.schema())

    def summary(self, table: pa.Table) -> dict[str, Any]:
        """Per column: count and nulls; min, max, mean and std of numbers; top string values."""
        return {"columns": {c: column_stats(table.column(c), t) for c, t in self.columns.items()
                            if c in table.column_names}}

    def training_row(self, row: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
        feats = self.features
        out: dict[str, Any] = {
            # numbers only (missing: NaN), the shape code packages have always read
            "features": [math.nan if row[c] is None else float(row[c])
                         for c, t in feats.items() if t in NUMERIC],
            "values": {c: row[c] for c in feats},  # every feature by name, as stored
        }
        if self.label_field:
            out["label"] = _label_index(str(row[self.target]), label_names)
        else:
            out["target"] = row[self.target]
        return out

    def model_input(self, row: dict[str, Any]) -> Any:
        return {c: row[c] for c in self.features}  # every feature by name, as stored

    def training_schema(self) -> dict[str, str]:
        return {"features": "list[float] (numeric features; NaN where missing)",
                "values": "dict[str, float|int|str|bool|None] (every feature)",
                ("label" if self.label_field else "target"):
                    "int (index into label_names)" if self.label_field else "float"}


def column_stats(col: pa.ChunkedArray | pa.Array, kind: str) -> dict[str, Any]:
    nulls = int(col.null_count)
    out: dict[str, Any] = {"type": kind, "count": len(col) - nulls, "nulls": nulls}
    if kind == "string" or len(col) == nulls:
        if kind == "string" and len(col) > nulls:
            counts = pc.value_counts(col.drop_null()).to_pylist()
            counts.sort(key=lambda vc: (-vc["counts"], vc["values"]))
            out["distinct"] = len(counts)
            out["top"] = {vc["values"]: vc["counts"] for vc in counts[:TOP_VALUES]}
        return out
    x = pc.cast(col, pa.float64()) if kind == "bool" else col
    mm = pc.min_max(x).as_py()
    out.update(min=mm["min"], max=mm["max"], mean=_round(pc.mean(x).as_py()),
               std=_round(pc.stddev(x, ddof=0).as_py()))
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (
        isinstance(v, float) and math.isnan(v))


def _coerce(v: Any, t: str) -> Any:
    try:
        if t == "float":
            if isinstance(v, bool):
                return None
            f = float(v)
            return f if math.isfinite(f) else None
        if t == "int":
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                return None
            return int(v)
        if t == "bool":
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
                return v.lower() in ("true", "1")
            return None
        if t == "string":
            return v if isinstance(v, str) else str(v) if isinstance(v, (int, float)) else None
    except (TypeError, ValueError, OverflowError):
        return None
    return None
