"""Dataset types: one small interface, one registry of the types that plug into it.

A type states the Arrow schema rows are stored in (its ingestion schema), validates rows
strictly before anything is written, and turns a stored row into a training row. Add a type by
subclassing `DatasetType` and listing it in `TYPES`; `tabular` lives in `_tabular.py`.
"""

from __future__ import annotations

import abc
import base64
import json
from typing import Any, ClassVar

import pyarrow as pa

from modelyard.core.errors import InvalidArgument
from modelyard.datasets._png import png_size

MAX_TEXT_CHARS = 10_000
MAX_LABEL_CHARS = 200
MAX_LABELS = 64
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_ERRORS = 50
RESERVED = ("row_id", "row_hash")


class RowErrors:
    """Collects per-row problems; `raise_if_any` raises one InvalidArgument naming them all."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.count = 0

    def add(self, row: int, field: str, problem: str) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append({"row": row, "field": field, "problem": problem})

    def merge(self, details: dict[str, Any]) -> None:
        """Adds the problems another `raise_if_any` reported (validation of a later batch)."""
        for e in details.get("errors", []):
            if len(self.items) < MAX_ERRORS:
                self.items.append(e)
        self.count += int(details.get("error_count", len(details.get("errors", []))))

    def raise_if_any(self, what: str = "rows") -> None:
        if not self.count:
            return
        first = self.items[0]
        raise InvalidArgument(
            f"{self.count} problem(s) in the {what}; first: row {first['row']} field "
            f"{first['field']!r}: {first['problem']}. Fix these rows and commit again; nothing "
            "was stored",
            {"errors": self.items, "error_count": self.count,
             "rows": sorted({e["row"] for e in self.items}),
             "fields": sorted({e["field"] for e in self.items})},
        )


def _check_str(errors: RowErrors, i: int, field: str, v: Any, max_len: int,
               empty_ok: bool = False) -> str | None:
    if not isinstance(v, str):
        errors.add(i, field, f"must be a string, got {type(v).__name__}")
        return None
    if not v.strip() and not empty_ok:
        errors.add(i, field, "must not be empty")
        return None
    if len(v) > max_len:
        errors.add(i, field, f"is {len(v)} characters long; the limit is {max_len}")
        return None
    return v


def _check_keys(errors: RowErrors, i: int, row: Any, fields: tuple[str, ...]) -> bool:
    if not isinstance(row, dict):
        errors.add(i, "*", f"must be an object with fields {list(fields)}")
        return False
    ok = True
    for f in fields:
        if f not in row or row[f] is None:
            errors.add(i, f, "is missing")
            ok = False
    for f in row:
        if f not in fields:
            errors.add(i, str(f)[:100], f"is not a field of this dataset type; expected {list(fields)}")
            ok = False
    return ok


class DatasetType(abc.ABC):
    """How one kind of dataset is stored, validated and fed to training.

    `validate(rows)` takes plain row dicts (from JSON, CSV, Parquet...) and returns an Arrow
    table in `schema()`; it raises InvalidArgument naming every offending row index and field,
    and never returns a partial table.
    """

    name: ClassVar[str]
    label_field: ClassVar[str | None] = None
    summary_columns: ClassVar[tuple[str, ...]] = ()  # what `summary` reads (keep it cheap)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        if self.config and type(self).__init__ is DatasetType.__init__:  # takes no options
            # strict: a key kept and ignored would look like a setting that took effect
            key = next(iter(self.config))
            raise InvalidArgument(f"unknown {self.name} config key {key!r}: this type takes no "
                                  "config", {"field": f"config.{key}"})

    @abc.abstractmethod
    def schema(self) -> pa.Schema:
        """The ingestion (storage) schema, without the reserved row_id/row_hash columns."""

    @abc.abstractmethod
    def validate(self, rows: list[dict[str, Any]], offset: int = 0) -> pa.Table: ...

    def labels_of(self, table: pa.Table) -> list[str]:
        """Every label occurrence in `table` (a list-labelled type contributes each label)."""
        if self.label_field is None or self.label_field not in table.column_names:
            return []
        col = table.column(self.label_field)
        if pa.types.is_list(col.type):
            return [x for v in col.to_pylist() for x in (v or [])]
        return [str(x) for x in col.to_pylist()]

    def summary(self, table: pa.Table) -> dict[str, Any]:
        """Type-specific statistics (text lengths, image sizes...) over `summary_columns`."""
        return {}

    def training_row(self, row: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
        """A stored row as trainer code sees it."""
        return {k: v for k, v in row.items() if k not in RESERVED}

    def training_schema(self) -> dict[str, str]:
        return {f.name: str(f.type) for f in self.schema()}

    def model_input(self, row: dict[str, Any]) -> Any:
        """A stored row as a client sends it to a model trained on this type (its raw input,
        before the model's preprocessing). InvalidArgument where the type has none."""
        raise InvalidArgument(f"a {type(self).name} row is not a model input: pass a reference "
                              "computed from your own data", {"field": "reference"})


class ImageClassification(DatasetType):
    """PNG image bytes and one label; JSON callers send the image base64-encoded."""

    name = "image_classification"
    label_field = "label"
    summary_columns = ("width", "height")

    def schema(self) -> pa.Schema:
        return pa.schema([("image", pa.binary()), ("label", pa.string()),
                          ("width", pa.int32()), ("height", pa.int32())])

    def validate(self, rows: list[dict[str, Any]], offset: int = 0) -> pa.Table:
        errors = RowErrors()
        out: dict[str, list[Any]] = {"image": [], "label": [], "width": [], "height": []}
        images, labels, widths, heights = out["image"], out["label"], out["width"], out["height"]
        for j, row in enumerate(rows):
            # Fast path for the common well-formed row; anything unusual takes the checks below
            # (which name every problem), so both paths accept exactly the same rows.
            if type(row) is dict and len(row) == 2:
                img, label = row.get("image"), row.get("label")
                if type(img) is bytes and type(label) is str and 0 < len(label) <= MAX_LABEL_CHARS \
                        and len(img) <= MAX_IMAGE_BYTES and label.strip():
                    try:
                        w, h = png_size(img)
                    except ValueError:
                        pass  # reported with its reason below
                    else:
                        images.append(img)
                        labels.append(label)
                        widths.append(w)
                        heights.append(h)
                        continue
            i = offset + j
            if not _check_keys(errors, i, row, ("image", "label")):
                continue
            label = _check_str(errors, i, "label", row["label"], MAX_LABEL_CHARS)
            img = row["image"]
            if isinstance(img, str):
                try:
                    img = base64.b64decode(img, validate=True)
                except ValueError:
                    errors.add(i, "image", "is a string but not valid base64 of PNG bytes")
                    continue
            if not isinstance(img, (bytes, bytearray)):
                errors.add(i, "image", f"must be PNG bytes (base64 in JSON), got {type(img).__name__}")
                continue
            if len(img) > MAX_IMAGE_BYTES:
                errors.add(i, "image", f"is {len(img)} bytes; the limit is {MAX_IMAGE_BYTES}")
                continue
            try:
                w, h = png_size(bytes(img))
            except ValueError as e:
                errors.add(i, "image", f"is not a valid PNG image: {e}")
                continue
            if label is None:
                continue
            out["image"].append(bytes(img))
            out["label"].append(label)
            out["width"].append(w)
            out["height"].append(h)
        errors.raise_if_any()
        return pa.table(out, schema=self.schema())

    def summary(self, table: pa.Table) -> dict[str, Any]:
        if table.num_rows == 0:
            return {}
        return {"width": _minmax(table.column("width")), "height": _minmax(table.column("height"))}

    def training_row(self, row: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
        return {"image": row["image"], "label": _label_index(row["label"], label_names)}

    def model_input(self, row: dict[str, Any]) -> Any:
        return row["image"]  # PNG bytes

    def training_schema(self) -> dict[str, str]:
        return {"image": "png bytes", "label": "int (index into label_names)"}


LABEL_SEPARATOR = "|"


class TextIntent(DatasetType):
    """An utterance and one or more intent labels; `labels` given as one string (a CSV cell)
    holds them separated by `|`."""

    name = "text_intent"
    label_field = "labels"
    summary_columns = ("text",)

    def schema(self) -> pa.Schema:
        return pa.schema([("text", pa.string()), ("labels", pa.list_(pa.string()))])

    def validate(self, rows: list[dict[str, Any]], offset: int = 0) -> pa.Table:
        errors = RowErrors()
        texts: list[str] = []
        labels: list[list[str]] = []
        for j, row in enumerate(rows):
            i = offset + j
            if isinstance(row, dict) and "label" in row and "labels" not in row:
                row = {**{k: v for k, v in row.items() if k != "label"}, "labels": [row["label"]]}
            if not _check_keys(errors, i, row, ("text", "labels")):
                continue
            text = _check_str(errors, i, "text", row["text"], MAX_TEXT_CHARS)
            ls = row["labels"]
            if isinstance(ls, str):  # a CSV cell can't hold a list: `greet|smalltalk` is two
                ls = [x.strip() for x in ls.split(LABEL_SEPARATOR) if x.strip()]
            if not isinstance(ls, list) or not ls or len(ls) > MAX_LABELS:
                errors.add(i, "labels", f"must be a list of 1 to {MAX_LABELS} strings")
                continue
            good = [_check_str(errors, i, "labels", x, MAX_LABEL_CHARS) for x in ls]
            if text is None or any(g is None for g in good):
                continue
            texts.append(text)
            labels.append([g for g in good if g is not None])
        errors.raise_if_any()
        return pa.table({"text": texts, "labels": labels}, schema=self.schema())

    def summary(self, table: pa.Table) -> dict[str, Any]:
        if table.num_rows == 0:
            return {}
        import pyarrow.compute as pc

        return {"text_length": _minmax(pc.utf8_length(table.column("text")))}

    def training_row(self, row: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
        return {"text": row["text"], "labels": list(row["labels"])}

    def model_input(self, row: dict[str, Any]) -> Any:
        return row["text"]

    def training_schema(self) -> dict[str, str]:
        return {"text": "str", "labels": "list[str]"}


class Generic(DatasetType):
    """A file reference (a path or URI) plus free JSON metadata."""

    name = "generic"

    def schema(self) -> pa.Schema:
        return pa.schema([("file", pa.string()), ("metadata", pa.string())])

    def validate(self, rows: list[dict[str, Any]], offset: int = 0) -> pa.Table:
        errors = RowErrors()
        files: list[str] = []
        metas: list[str] = []
        for j, row in enumerate(rows):
            i = offset + j
            if isinstance(row, dict) and "metadata" not in row:
                row = {**row, "metadata": {}}
            if not _check_keys(errors, i, row, ("file", "metadata")):
                continue
            f = _check_str(errors, i, "file", row["file"], 2048)
            if f is not None and (".." in f.replace("\\", "/").split("/") or "\x00" in f):
                errors.add(i, "file", "must not contain '..' segments or NUL bytes")
                f = None
            meta = row["metadata"]
            if isinstance(meta, str):
                try:
                    meta = json.loads(meta)
                except (ValueError, RecursionError):
                    meta = None
            if not isinstance(meta, dict):
                errors.add(i, "metadata", "must be a JSON object")
                continue
            text = json.dumps(meta, sort_keys=True, default=str)
            if len(text) > 64 * 1024:
                errors.add(i, "metadata", f"is {len(text)} bytes as JSON; the limit is 65536")
                continue
            if f is not None:
                files.append(f)
                metas.append(text)
        errors.raise_if_any()
        return pa.table({"file": files, "metadata": metas}, schema=self.schema())

    def training_row(self, row: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
        return {"file": row["file"], "metadata": json.loads(row["metadata"])}


def _label_index(label: str, label_names: list[str]) -> int:
    try:
        return label_names.index(label)
    except ValueError:
        return -1


def _minmax(col: Any) -> dict[str, float]:
    import pyarrow.compute as pc

    mm = pc.min_max(col).as_py()
    mean = pc.mean(col).as_py()
    return {"min": mm["min"], "max": mm["max"], "mean": round(float(mean or 0), 3)}


from modelyard.datasets._tabular import Tabular  # noqa: E402 - it builds on the base above

_ALL: tuple[type[DatasetType], ...] = (ImageClassification, TextIntent, Tabular, Generic)
TYPES: dict[str, type[DatasetType]] = {t.name: t for t in _ALL}


def get_type(name: str, config: dict[str, Any] | None = None) -> DatasetType:
    cls = TYPES.get(name)
    if cls is None:
        raise InvalidArgument(f"unknown dataset type {name!r}: use one of {sorted(TYPES)}",
                              {"field": "type"})
    return cls(config)
