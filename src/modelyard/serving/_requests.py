"""The request path of `ServingService`: pick a version, batch, answer, measure."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.core.errors import (
    InvalidArgument,
    ModelyardError,
    ResourceExhausted,
    Unavailable,
)
from modelyard.core.ids import new_id, utcnow
from modelyard.metrics import MAX_VERSION
from modelyard.metrics.models import EventRow
from modelyard.serving import _v2, canary
from modelyard.serving.batcher import BatchFailed, BatchResult, Retired
from modelyard.serving.cache import Entry
from modelyard.serving.models import (
    Deployment,
    InferRequest,
    ModelMetadata,
    Prediction,
    PredictResponse,
)
from modelyard.serving.runtime import ModelKey

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from modelyard.core.settings import ServingSettings
    from modelyard.metrics.service import MetricsService
    from modelyard.serving._prom import ServingMetrics
    from modelyard.serving.cache import ModelCache

log = logging.getLogger("modelyard.serving")


class RequestPath:
    """The async half of `ServingService` (a mixin, kept apart to keep modules small).

    Uses the blocking helpers the service defines; they run in its thread pool.
    """

    settings: ServingSettings
    metrics: MetricsService
    prom: ServingMetrics
    cache: ModelCache
    _background: set[asyncio.Task[Any]]

    if TYPE_CHECKING:  # provided by ServingService
        @property
        def pool(self) -> ThreadPoolExecutor: ...

        def _deployment(self, project: str, name: str) -> Deployment: ...

        def _cached_deployment(self, project: str, name: str) -> Deployment | None: ...

        def _cached_version(self, dep: Deployment) -> int | None: ...

        def _resolve(self, dep: Deployment) -> int: ...

        def _entry(self, key: ModelKey) -> Entry: ...

    # -- public, async --------------------------------------------------------------------------
    async def predict(self, project: str, name: str, inputs: list[Any],
                      version: int | None = None) -> PredictResponse:
        """Raw inputs through the version's preprocessing and network; one prediction each."""
        preds, model_version, request_id, model = await self.predicted(project, name, inputs,
                                                                       version)
        return PredictResponse(predictions=[Prediction(**p) for p in preds],
                               model_version=model_version, request_id=request_id,
                               deployment=name, model=model)

    async def predicted(self, project: str, name: str, inputs: list[Any],
                        version: int | None = None) -> tuple[list[dict[str, Any]], int, str, str]:
        """What `predict` answers, as plain values: the predictions (each a `Prediction`'s
        fields: a str label and a float confidence, as every decoder makes them), the model
        version, the request id and the model's name. The fast path writes these as JSON itself (a sixth of
        the cost of building and serializing the response model)."""
        request_id = new_id("req")
        dep = await self._find(project, name)
        key = await self._choose(dep, version)
        _, res = await self._measured(dep, key, request_id, raw=inputs)
        assert res.predictions is not None
        if dep.shadow_version and dep.shadow_version != key.version:
            self._spawn(self._shadow(dep, request_id, raw=inputs))
        return res.predictions, key.version, request_id, dep.model

    async def infer(self, project: str, name: str, req: InferRequest,
                    version: int | None = None,
                    blobs: dict[str, bytes] | None = None) -> _v2.Outcome:
        """An Open Inference Protocol request: the model's input tensor, its first output."""
        request_id = req.id or new_id("req")
        dep = await self._find(project, name)
        key = await self._choose(dep, version)
        entry = await self._load(dep, key)
        tensor = _v2.decode_inputs(req.inputs, entry.model.inputs, blobs)
        out = entry.model.outputs[0]
        for o in req.outputs or []:
            if o.name != out.name:
                raise InvalidArgument(f"unknown output {o.name!r}: this model serves {out.name!r}",
                                      {"output": o.name})
        _, res = await self._measured(dep, key, request_id, tensor=tensor)
        if dep.shadow_version and dep.shadow_version != key.version:
            self._spawn(self._shadow(dep, request_id, tensor=tensor))
        return _v2.Outcome(model_name=name, model_version=str(key.version), id=request_id,
                           outputs=[(out.name, res.logits, out.datatype)], model=dep.model)

    async def metadata(self, project: str, name: str, version: int | None = None) -> ModelMetadata:
        dep = await self._find(project, name)
        key = await self._choose(dep, version, random_split=False)
        entry = await self._load(dep, key)
        versions = sorted(int(v) for v in dep.traffic) if dep.traffic else [key.version]
        return ModelMetadata(name=name, versions=[str(v) for v in versions],
                             platform=entry.model.platform, inputs=entry.model.inputs,
                             outputs=entry.model.outputs)

    async def ready(self, project: str, name: str, version: int | None = None) -> bool:
        """Loads the deployment's main version if needed; True once it can answer."""
        await self.metadata(project, name, version)
        return True

    # -- internals ------------------------------------------------------------------------------
    async def _find(self, project: str, name: str) -> Deployment:
        """The deployment, from the cache without leaving the event loop when fresh."""
        dep = self._cached_deployment(project, name)
        return dep if dep is not None else await self._call(self._deployment, project, name)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def _choose(self, dep: Deployment, version: int | None,
                      random_split: bool = True) -> ModelKey:
        if version is not None:
            if not 1 <= version <= MAX_VERSION:
                raise InvalidArgument(f"version {version} is not a model version: versions go "
                                      f"from 1 to {MAX_VERSION}", {"field": "version"})
            return ModelKey(dep.project, dep.model, version)
        if dep.traffic:
            v = canary.pick(dep.traffic) if random_split else \
                int(max(dep.traffic.items(), key=lambda kv: kv[1])[0])
            return ModelKey(dep.project, dep.model, v)
        version = self._cached_version(dep)
        if version is None:
            version = await self._call(self._resolve, dep)
        return ModelKey(dep.project, dep.model, version)

    async def _load(self, dep: Deployment, key: ModelKey) -> Entry:
        entry = self.cache.peek(key)
        if entry is None:
            entry = await self._call(self._entry, key)
        return entry

    async def _submit(self, dep: Deployment, key: ModelKey, raw: list[Any] | None,
                      tensor: np.ndarray | None) -> tuple[Entry, BatchResult]:
        timeout = dep.batching.request_timeout_s or self.settings.request_timeout_s
        loop = asyncio.get_running_loop()
        for _ in range(5):
            entry = await self._load(dep, key)
            try:
                answer = entry.batcher(dep.name, dep.batching).enqueue(raw, tensor)
            except Retired:
                continue  # unloaded meanwhile: load it again
            # the deadline fails the future itself (a batch skips a request whose future is
            # done): one timer, where `asyncio.wait_for` adds a waiter and callbacks
            deadline = loop.call_later(timeout, _expire, answer)
            try:
                return entry, await answer
            except TimeoutError:
                raise Unavailable(
                    f"no answer from {key} within {timeout:g}s; retry, or raise the "
                    "deployment's batching.request_timeout_s", {"retry_after_s": 1}) from None
            finally:
                deadline.cancel()
        raise Unavailable(f"model {key} keeps being unloaded; retry", {"retry_after_s": 1})

    async def _measured(self, dep: Deployment, key: ModelKey, request_id: str, *,
                        raw: list[Any] | None = None, tensor: np.ndarray | None = None,
                        shadow: bool = False) -> tuple[Entry, BatchResult]:
        t0 = time.perf_counter()
        outcome = "ok"
        res: BatchResult | None = None
        entry: Entry | None = None
        try:
            entry, res = await self._submit(dep, key, raw, tensor)
            return entry, res
        except InvalidArgument:
            outcome = "invalid"
            raise
        except ResourceExhausted:
            outcome = "rejected"
            raise
        except BatchFailed:  # the model's fault, logged by its batcher
            outcome = "error"
            raise
        except Unavailable:
            outcome = "timeout"
            raise
        except ModelyardError:
            outcome = "error"
            raise
        except Exception as e:
            outcome = "error"
            log.exception("prediction on %s failed", key)
            raise Unavailable(f"model {key} failed to answer; the server log has details") from e
        finally:
            elapsed = time.perf_counter() - t0
            if shadow:  # no caller saw it: counted apart (see _prom.py)
                self.prom.shadowed(dep.project, dep.name, str(key.version), outcome)
            else:
                self.prom.answered(dep.project, dep.name, str(key.version), outcome,
                                   None if outcome == "invalid" else elapsed)
            if outcome != "invalid":
                self._record(dep, key, request_id, elapsed * 1000, outcome, res, entry, shadow)

    def _record(self, dep: Deployment, key: ModelKey, request_id: str, latency_ms: float,
                outcome: str, res: BatchResult | None, entry: Entry | None,
                shadow: bool) -> None:
        now = utcnow()

        def event(rid: str, label: str | None = None, confidence: float | None = None,
                  summary: dict[str, Any] | None = None) -> EventRow:
            return EventRow(dep.project, dep.name, dep.model, key.version, now, latency_ms,
                            outcome, label[:200] if label else label, confidence, rid,
                            summary, shadow)

        if res is None:
            events = [event(request_id)]
        else:
            n = res.inputs.shape[0]
            preds = res.predictions
            if preds is None:  # a v2 tensor request: label the logits for the metrics store
                try:
                    preds = entry.model.pre.decode(res.logits) if entry else None
                except Exception:  # noqa: BLE001 - logits the preprocessing cannot label
                    preds = None
            preds = preds or [{"label": None, "confidence": None}] * n
            events = [event(request_id if n == 1 else f"{request_id}/{i}", p["label"],
                            p["confidence"], res.summaries[i] or None)
                      for i, p in enumerate(preds)]
        self.metrics.record(events)

    async def _shadow(self, dep: Deployment, request_id: str, raw: list[Any] | None = None,
                      tensor: np.ndarray | None = None) -> None:
        key = ModelKey(dep.project, dep.model, int(dep.shadow_version or 0))
        try:
            if tensor is not None:  # the shadow may take another shape than the main version
                (await self._load(dep, key)).model.check_shape(tensor)
            await self._measured(dep, key, request_id, raw=raw, tensor=tensor, shadow=True)
        except Exception:  # noqa: BLE001 - a shadow never affects the caller
            log.debug("shadow request to %s failed", key, exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _expire(answer: asyncio.Future[Any]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())
