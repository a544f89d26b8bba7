"""Where rows come from: uploaded files (CSV, JSON, JSONL, Parquet) and built-in data sets."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidArgument

FORMATS = ("csv", "json", "jsonl", "parquet")


BATCH_ROWS = 5000


def iter_file(path: Path, fmt: str, batch_rows: int = BATCH_ROWS) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows of an uploaded file, read incrementally. Malformed input raises
    InvalidArgument naming the rows, after the whole file was read (so all are named)."""
    if fmt == "csv":
        yield from _batched(_csv(path), batch_rows)
    elif fmt == "jsonl":
        yield from _batched(_jsonl(path), batch_rows)
    elif fmt == "json":
        yield from _batched(iter(_json(path)), batch_rows)
    elif fmt == "parquet":
        yield from _parquet(path, batch_rows)
    else:
        raise InvalidArgument(f"unknown format {fmt!r}: use one of {list(FORMATS)}",
                              {"field": "format"})


def read_file(path: Path, fmt: str) -> list[dict[str, Any]]:
    return [r for batch in iter_file(path, fmt) for r in batch]


def _batched(rows: Iterator[dict[str, Any]], n: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for r in rows:
        batch.append(r)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _json(path: Path) -> list[dict[str, Any]]:
    # A JSON document cannot be parsed in pieces; JSONL, CSV and Parquet stream.
    try:
        data = json.loads(path.read_text("utf-8"))
    except RecursionError as e:
        raise InvalidArgument("the JSON upload nests too deep to read; flatten it",
                              {"format": "json"}) from e
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"the upload is not valid JSON: {str(e)[:200]}",
                              {"format": "json"}) from e
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise InvalidArgument("a JSON upload must be a list of rows or {\"rows\": [...]}")
    return rows


def _parquet(path: Path, batch_rows: int) -> Iterator[list[dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
        for batch in f.iter_batches(batch_size=batch_rows):
            yield batch.to_pylist()
    except (pa.ArrowInvalid, OSError) as e:
        raise InvalidArgument(f"the upload is not a readable Parquet file: {str(e)[:200]}",
                              {"format": "parquet"}) from e


def _csv(path: Path) -> Iterator[dict[str, Any]]:
    import csv

    n = 0
    bad: list[int] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
            if not header or any(not h.strip() for h in header):
                raise InvalidArgument("the CSV needs a header row naming every column",
                                      {"rows": [0], "format": "csv"})
            if len(set(header)) != len(header):
                raise InvalidArgument("the CSV header repeats a column name", {"fields": header})
            for i, rec in enumerate(reader):
                n = i
                if len(rec) != len(header):
                    bad.append(i)
                elif not bad:
                    yield dict(zip(header, rec, strict=True))
    except csv.Error as e:
        raise InvalidArgument(f"malformed CSV near data row {n + 1}: {e}",
                              {"rows": [*bad[:49], n + 1], "format": "csv"}) from e
    except UnicodeDecodeError as e:
        raise InvalidArgument("the CSV is not UTF-8 text", {"format": "csv"}) from e
    if bad:
        raise InvalidArgument(
            f"malformed CSV: {len(bad)} row(s) do not have {len(header)} columns, first data "
            f"row {bad[0]}; quote fields that contain commas. Nothing was stored",
            {"rows": bad[:50], "format": "csv", "expected_columns": header})


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    bad: list[int] = []
    i = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, or nested too deep to read
                bad.append(i)
            else:
                if not bad:
                    yield row
            i += 1
    if bad:
        raise InvalidArgument(f"{len(bad)} line(s) of the JSONL upload are not valid JSON, first "
                              f"row {bad[0]}; nothing was stored", {"rows": bad[:50], "format": "jsonl"})


# ---- built-in sources: name -> (type, config, loader) ----------------------------------------

def _png_gray(pixels: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _digits() -> list[dict[str, Any]]:
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = (d.images * 15).clip(0, 255).astype(np.uint8)
    return [{"image": _png_gray(img), "label": str(int(t))} for img, t in zip(imgs, d.target, strict=True)]


def _sk_tabular(name: str) -> tuple[dict[str, Any], Callable[[], list[dict[str, Any]]]]:
    import sklearn.datasets as skd

    loader = getattr(skd, f"load_{name}")
    d = loader()
    feats = [_col(f) for f in d.feature_names]
    config = {"columns": {**{f: "float" for f in feats}, "target": "string"}, "target": "target"}

    def rows() -> list[dict[str, Any]]:
        out = []
        for x, t in zip(d.data, d.target, strict=True):
            r: dict[str, Any] = {f: float(v) for f, v in zip(feats, x, strict=True)}
            r["target"] = str(d.target_names[int(t)])
            out.append(r)
        return out

    return config, rows


def _col(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _intents() -> list[dict[str, Any]]:
    import chatterbot_corpus
    import yaml

    root = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    rows = []
    for path in sorted(root.glob("*.yml")):
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        category = path.stem
        for conv in data.get("conversations") or []:
            if isinstance(conv, list) and conv and isinstance(conv[0], str) and conv[0].strip():
                rows.append({"text": conv[0].strip()[:10_000], "labels": [category]})
    return rows


BUILTINS = ("sklearn:digits", "sklearn:iris", "sklearn:wine", "sklearn:breast_cancer",
            "chatterbot:intents")


def builtin(source: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(type, config, rows) of a built-in source."""
    if source == "sklearn:digits":
        return "image_classification", {}, _digits()
    if source in ("sklearn:iris", "sklearn:wine", "sklearn:breast_cancer"):
        config, rows = _sk_tabular(source.split(":", 1)[1])
        return "tabular", config, rows()
    if source == "chatterbot:intents":
        return "text_intent", {}, _intents()
    raise InvalidArgument(f"unknown source {source!r}: use one of {list(BUILTINS)}",
                          {"field": "source"})
