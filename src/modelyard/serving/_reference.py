"""The automatic reference of input drift: a deployment's training data, as its model sees it."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.core.errors import InvalidArgument
from modelyard.serving.runtime import ModelKey, build_preprocessor, summaries_of

if TYPE_CHECKING:
    from modelyard.registry.service import RegistryService

# (project, snapshot id, split, limit, seed) -> each sampled row as a client sends it
ReadInputs = Callable[[str, str, str, int, int], list[Any]]

MIN_ROWS = 10  # what input drift needs of a reference
_CHUNK = 256  # raw inputs preprocessed at once


class InputReferences:
    """Per-row input means of a deployment's training data: a seeded sample (at most `rows`)
    of the train split of the snapshot its model version was trained on, through that
    version's preprocessing and the same per-row summary served inputs get. Call it with
    (project, deployment); it is the reference input drift uses when none is given.

    A model version never changes, so its reference is computed once and kept in memory (the
    `cached` most recently used versions). Raises InvalidArgument, naming `reference` as what
    to pass, for a version with no training snapshot (a user's own ONNX model) or whose
    training rows its preprocessing cannot read.
    """

    def __init__(self, registry: RegistryService, deployed: Callable[[str, str], ModelKey],
                 read_inputs: ReadInputs, rows: int = 2000, seed: int = 0,
                 cached: int = 64) -> None:
        self._registry = registry
        self._deployed = deployed
        self._read_inputs = read_inputs
        self.rows = rows
        self.seed = seed
        self._cached = cached
        self._cache: OrderedDict[ModelKey, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, project: str, deployment: str) -> list[float]:
        return self.of_version(self._deployed(project, deployment))

    def of_version(self, key: ModelKey) -> list[float]:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        means = self._compute(key)
        with self._lock:
            self._cache[key] = means
            while len(self._cache) > self._cached:
                self._cache.popitem(last=False)
        return means

    def _compute(self, key: ModelKey) -> list[float]:
        ref = f"{key.model}@{key.version}"
        mv = self._registry.get_version(key.project, key.model, key.version)
        snapshot = mv.dataset_snapshot_id
        if not snapshot:
            raise InvalidArgument(
                f"{ref} was not trained on a dataset snapshot, so there is no automatic "
                "reference: pass `reference`, at least 10 per-row means of reference inputs "
                "after the model's preprocessing", {"field": "reference", "model_version": ref})
        raw = self._read_inputs(key.project, snapshot, "train", self.rows, self.seed)
        pre = build_preprocessor(mv.preprocessing)
        means: list[float] = []
        for i in range(0, len(raw), _CHUNK):
            try:
                x = np.asarray(pre.transform(raw[i:i + _CHUNK]))
            except InvalidArgument as e:
                raise InvalidArgument(
                    f"the training rows of {ref} (snapshot {snapshot}) do not fit its "
                    f"preprocessing ({e.message}): pass `reference`",
                    {"field": "reference", "model_version": ref}) from e
            for s in summaries_of(pre, x):
                m = s.get("mean")
                if isinstance(m, (int, float)) and math.isfinite(m):
                    means.append(float(m))
        if len(means) < MIN_ROWS:
            raise InvalidArgument(
                f"the train split of snapshot {snapshot} ({ref}'s training data) gives "
                f"{len(means)} input rows, fewer than {MIN_ROWS}: pass `reference`",
                {"field": "reference", "model_version": ref})
        return means
