"""Row hashes are the dataset's identity (diffs, content hashes, split assignment): their bytes
must not drift when the hashing code is made faster."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa

from modelyard.datasets._lance import row_hashes, with_ids


def _reference(row: list[object]) -> str:
    """The documented scheme, written plainly: each field encoded (bytes as is, str as b"s" +
    UTF-8, anything else as sorted-key JSON), prefixed by its 8-byte little-endian length."""
    out = b""
    for v in row:
        if isinstance(v, bytes):
            p = v
        elif isinstance(v, str):
            p = b"s" + v.encode()
        else:
            p = json.dumps(v, sort_keys=True).encode()
        out += len(p).to_bytes(8, "little") + p
    return hashlib.sha256(out).hexdigest()


def test_row_hashes_follow_the_scheme_for_every_column_type() -> None:
    table = pa.table({
        "image": pa.array([b"\x89PNG", None, b""], pa.binary()),
        "text": pa.array(["héllo", None, ""], pa.string()),
        "count": pa.array([0, None, -12345678901], pa.int64()),
        "flag": pa.array([True, None, False], pa.bool_()),
        "score": pa.array([1.5, None, 1e-9], pa.float64()),
        "labels": pa.array([["a", "b"], None, []], pa.list_(pa.string())),
    })
    rows = [list(r.values()) for r in table.to_pylist()]
    assert row_hashes(table) == [_reference(r) for r in rows]


def test_fresh_row_ids_are_distinct_and_equal_content_reuses_an_id() -> None:
    table = pa.table({"text": ["a", "b", "a", "c"]})
    first = with_ids(table)
    ids = first.column("row_id").to_pylist()
    assert len(set(ids)) == 4 and all(i.startswith("r") and len(i) == 17 for i in ids)
    h = first.column("row_hash").to_pylist()
    again = with_ids(pa.table({"text": ["a", "z"]}), reuse={h[0]: [ids[0]]})
    assert again.column("row_id").to_pylist()[0] == ids[0]
    assert again.column("row_id").to_pylist()[1] not in ids


def test_row_hashes_of_long_columns_with_repeated_values_follow_the_scheme() -> None:
    n = 300  # long enough that repeated labels and sizes are encoded once per distinct value
    table = pa.table({
        "image": pa.array([bytes([i % 256, i // 256]) for i in range(n)], pa.binary()),
        "label": pa.array([None if i % 17 == 0 else str(i % 3) for i in range(n)], pa.string()),
        "width": pa.array([None if i % 23 == 0 else 8 + i % 2 for i in range(n)], pa.int32()),
        "text": pa.array([f"unique {i}" for i in range(n)], pa.string()),
    })
    rows = [list(r.values()) for r in table.to_pylist()]
    assert row_hashes(table) == [_reference(r) for r in rows]
    chunked = pa.concat_tables([table.slice(0, 100), table.slice(100)])  # several chunks
    assert row_hashes(chunked) == row_hashes(table)
