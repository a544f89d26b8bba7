"""Streaming ingestion: rows are validated batch by batch while Lance writes them.

Lance pulls record batches from `IngestStream.reader()`; nothing becomes visible until Lance
commits at the end. A bad row stops anything more being handed to Lance, the rest of the input
is still validated (so the error names every offending row), and the reader then raises, which
aborts the write: no new version, nothing of the commit stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from modelyard.core.errors import InvalidArgument, ModelyardError
from modelyard.datasets import _lance
from modelyard.datasets.types import DatasetType, RowErrors


@dataclass
class Content:
    """What a version holds, kept incrementally: the additive content hash, rows, labels."""

    total: int = 0
    count: int = 0
    labels: Counter[str] = field(default_factory=Counter)

    def plus(self, kind: DatasetType, rows: pa.Table, sign: int) -> Content:
        hashes = rows.column("row_hash").to_pylist()
        labels = Counter(kind.labels_of(rows))
        return Content(_lance.content_sum(hashes, self.total, sign),
                       self.count + sign * len(hashes),
                       self.labels + labels if sign > 0 else self.labels - labels)


class IngestStream:
    def __init__(self, kind: DatasetType, batches: Iterable[list[dict]], start: Content,
                 reuse: dict[str, list[str]] | None = None, require_rows: bool = True) -> None:
        self.kind = kind
        self.batches = batches
        self.content = start
        self.reuse = reuse
        self.require_rows = require_rows
        self.rows_in = 0
        self.new_hashes: Counter[str] = Counter()
        self.failure: ModelyardError | None = None
        self.schema = kind.schema().append(pa.field("row_id", pa.string())).append(
            pa.field("row_hash", pa.string()))

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        errors = RowErrors()
        try:
            for rows in self.batches:
                try:
                    table = self.kind.validate(rows, self.rows_in)
                except InvalidArgument as e:
                    errors.merge(e.details)
                    table = None
                self.rows_in += len(rows)
                if table is None or errors.count:
                    continue  # keep validating, hand nothing more to Lance
                full = _lance.with_ids(table, self.reuse)
                self.content = self.content.plus(self.kind, full, 1)
                self.new_hashes.update(full.column("row_hash").to_pylist())
                yield from full.to_batches()
            errors.raise_if_any()
            if self.require_rows and self.rows_in == 0:
                raise InvalidArgument("no rows to append: send at least one row", {"field": "rows"})
        except ModelyardError as e:
            self.failure = e
            raise
