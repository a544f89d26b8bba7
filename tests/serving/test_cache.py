"""The model cache: memory-budgeted LRU with pinning, over real ONNX Runtime sessions."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelyard.core.errors import FailedPrecondition
from modelyard.serving.batcher import Batcher
from modelyard.serving.cache import Entry, ModelCache
from modelyard.serving.runtime import LoadedModel, ModelKey
from tests.serving._digits import PREPROCESSING, onnx_model


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as p:
        yield p


def _loader(pool: ThreadPoolExecutor, key: ModelKey, loads: list[ModelKey]) -> Entry:
    loads.append(key)
    model = LoadedModel(key, onnx_model(1.0), PREPROCESSING)
    return Entry(model, lambda _: Batcher(model, pool, 8, 0.001, 16))


def test_least_recently_used_unpinned_models_are_evicted_to_fit_the_budget(
        pool: ThreadPoolExecutor) -> None:
    size = len(onnx_model(1.0)) * 3
    cache = ModelCache(budget_bytes=int(size * 2.5))  # room for two
    loads: list[ModelKey] = []
    a, b, c, d = (ModelKey("p", "m", v) for v in range(1, 5))

    def get(k: ModelKey) -> Entry:
        return cache.get(k, lambda: _loader(pool, k, loads))

    first_a = get(a)
    get(b)
    assert get(a) is first_a  # a hit, and a is now the most recently used
    get(c)  # evicts b, the least recently used
    assert set(cache.loaded_keys()) == {a, c}
    assert loads == [a, b, c]
    cache.pin(a)
    get(b)
    get(d)  # a is pinned: c and then b make room
    assert set(cache.loaded_keys()) == {a, d}
    assert cache.used_bytes <= cache.budget_bytes
    assert first_a.retired is False
    cache.pin(a, False)
    assert cache.evict(a) and first_a.retired  # retired, not broken: queued work ends


def test_a_model_larger_than_the_whole_budget_is_refused(pool: ThreadPoolExecutor) -> None:
    cache = ModelCache(budget_bytes=100)
    key = ModelKey("p", "m", 1)
    with pytest.raises(FailedPrecondition, match="MEMORY_BUDGET_MB"):
        cache.get(key, lambda: _loader(pool, key, []))
    assert cache.loaded_keys() == []
