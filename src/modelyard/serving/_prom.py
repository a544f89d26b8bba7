"""Prometheus metrics of serving, registered on the platform's registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelyard.serving.cache import ModelCache
from modelyard.serving.runtime import ModelKey

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry, cache: ModelCache) -> None:
        self.requests = Counter(
            "modelyard_serving_requests", "prediction requests by outcome",
            ["project", "deployment", "version", "outcome"], registry=registry)
        self.latency = Histogram(
            "modelyard_serving_request_latency_seconds", "time to answer a prediction request",
            ["project", "deployment", "version"], buckets=LATENCY_BUCKETS, registry=registry)
        # copies sent to a deployment's shadow version: no caller sees their answers, so they
        # are kept out of the families above (and of alerts on their errors)
        self.shadow_requests = Counter(
            "modelyard_serving_shadow_requests", "shadow copies of prediction requests by outcome",
            ["project", "deployment", "version", "outcome"], registry=registry)
        self.loads = Counter(
            "modelyard_serving_model_loads", "model versions loaded into the model cache",
            ["project", "model", "version"], registry=registry)
        self.evictions = Counter(
            "modelyard_serving_model_evictions",
            "model versions unloaded: memory_budget (LRU eviction) or unloaded (by request)",
            ["project", "model", "version", "reason"], registry=registry)
        cache.observe(self._loaded, self._evicted)
        self.batch_size = Histogram(
            "modelyard_serving_batch_size", "rows per batch run by the model",
            ["project", "model", "version"], buckets=BATCH_BUCKETS, registry=registry)
        registry.register(_CacheCollector(cache))
        # label children, looked up once per label set rather than once per request (a
        # lookup takes a lock and checks every label: ~4 µs, as long as the update itself)
        self._counted: dict[tuple[str, str, str, str], Any] = {}
        self._timed: dict[tuple[str, str, str], Any] = {}

    def _loaded(self, key: ModelKey) -> None:
        self.loads.labels(key.project, key.model, str(key.version)).inc()

    def _evicted(self, key: ModelKey, reason: str) -> None:
        self.evictions.labels(key.project, key.model, str(key.version), reason).inc()

    def shadowed(self, project: str, deployment: str, version: str, outcome: str) -> None:
        self.shadow_requests.labels(project, deployment, version, outcome).inc()

    def answered(self, project: str, deployment: str, version: str, outcome: str,
                 latency_s: float | None) -> None:
        """Count one request by outcome, and observe its latency unless it is None."""
        key = (project, deployment, version, outcome)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.requests.labels(*key)
        counter.inc()
        if latency_s is not None:
            timed = self._timed.get(key[:3])
            if timed is None:
                timed = self._timed[key[:3]] = self.latency.labels(*key[:3])
            timed.observe(latency_s)

    def batch_observer(self, project: str, model: str, version: int) -> Callable[[int], None]:
        child = self.batch_size.labels(project, model, str(version))
        return child.observe


class _CacheCollector(Collector):
    """Read at scrape time: queue depth per loaded model and the cache's memory use."""

    def __init__(self, cache: ModelCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("modelyard_serving_queue_depth",
                                  "requests waiting in a model's batching queue",
                                  labels=["project", "model", "version"])
        used = 0
        keys = self.cache.loaded_keys()
        for key in keys:
            entry = self.cache.peek_quiet(key)
            if entry is None:
                continue
            used += entry.model.size_bytes
            depth.add_metric([key.project, key.model, str(key.version)], entry.depth)
        yield depth
        yield GaugeMetricFamily("modelyard_serving_loaded_models", "models in the cache",
                                value=len(keys))
        yield GaugeMetricFamily("modelyard_serving_cache_bytes",
                                "estimated memory of loaded models", value=used)
