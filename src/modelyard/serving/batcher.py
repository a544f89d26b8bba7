"""Dynamic batching: requests to one model wait up to a few ms to be run together.

One `Batcher` per loaded model. Requests enter a bounded queue (full: ResourceExhausted,
answered 429 with Retry-After); `workers` tasks each take up to `max_batch_size` rows and run
them in a thread pool so the event loop stays free, or on the loop itself when the model's
batches take less than a thread hop (INLINE_BELOW_S, measured per model). `workers` is how many
batches run at once: the process's share of the cores (more would split the cores between
small batches that could have been one). A worker waits up to `max_delay_s` for its batch to
fill only while every other worker, and at least one, is running a batch (nothing could start
the requests sooner), or, for a model run in the pool, while batches keep coming with several
rows (the requests come faster than batches finish): an idle model answers a lone request at
once, and requests that arrive while the workers compute form the next batch.
Each request is prepared (its preprocessing) inside the batch's thread, and one bad request fails
alone. A retired batcher takes no new requests but finishes those it holds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, NamedTuple

import numpy as np

from modelyard.core.errors import ModelyardError, ResourceExhausted, Unavailable
from modelyard.serving.runtime import LoadedModel

log = logging.getLogger("modelyard.serving")

# A model whose batches take less than this runs on the event loop, not in the pool: handing a
# batch to a thread and back costs more than that (measured: ~0.1 ms per hop on 2 cores).
INLINE_BELOW_S = 0.0005


class Retired(Exception):
    """The model was unloaded between lookup and submit; look it up again."""


class BatchFailed(Unavailable):
    """The model failed to answer (a fault of the model or its runtime, not of the request):
    what each request of a failed batch gets. Logged by the batcher (`_Failures`), so the
    request path does not log it again."""


# While a model keeps failing, a line with the counts so far at most this often
REPORT_EVERY_S = 60.0


class _Failures:
    """Failed batches of one model, logged once per run of failures: the first (and the
    first of each other exception type) with its traceback, then one line with the counts
    when a batch succeeds again, or every REPORT_EVERY_S while none does. A model that fails
    every batch under load logs a few lines, not a traceback per batch."""

    def __init__(self, key: object) -> None:
        self.key = key
        self.batches = 0  # in the current run of failures
        self.requests = 0
        self.kinds: set[type[BaseException]] = set()
        self.last: BaseException | None = None
        self.reported = 0.0

    def failed(self, e: BaseException, requests: int) -> None:
        self.batches += 1
        self.requests += requests
        self.last = e
        if type(e) not in self.kinds:
            self.kinds.add(type(e))
            self.reported = time.monotonic()
            log.error("batch of %s failed (%d requests); further failures of this model are "
                      "counted and logged together", self.key, requests, exc_info=e)
        elif time.monotonic() - self.reported >= REPORT_EVERY_S:
            self.reported = time.monotonic()
            log.error("%s: %s; still failing", self.key, self._counts())

    def succeeded(self) -> None:
        log.warning("%s: %s; a batch succeeded again", self.key, self._counts())
        self.batches = self.requests = 0
        self.kinds.clear()

    def _counts(self) -> str:
        last = self.last
        return (f"{self.batches} batches ({self.requests} requests) failed in all, the last "
                f"with {type(last).__name__}: {str(last)[:300]}")


class Job:
    """One request: raw inputs (to preprocess) or a ready tensor, and where its answer goes."""

    __slots__ = ("raw", "tensor", "rows", "future")

    def __init__(self, raw: list[Any] | None, tensor: np.ndarray | None, rows: int,
                 future: asyncio.Future[Any]) -> None:
        self.raw, self.tensor, self.rows, self.future = raw, tensor, rows, future


class BatchResult(NamedTuple):
    """What one job gets back: its rows of logits and the prepared inputs."""

    logits: np.ndarray
    inputs: np.ndarray
    predictions: list[dict[str, Any]] | None  # decoded labels (of a tensor job: if the batch's were)
    summaries: list[dict[str, Any]]  # per input row, for prediction events (drift)


class _Lane:
    """The queue and workers of one batcher on one event loop.

    A deque and bare futures rather than `asyncio.Queue` and `asyncio.wait_for`: a batch of
    one request otherwise pays for a task, a waiter set and a timer just to be taken."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_queue: int) -> None:
        self.loop = loop
        self.max_queue = max_queue
        self.jobs: deque[Job] = deque()
        self.idle: deque[asyncio.Future[None]] = deque()  # workers waiting for a job
        self.filling: asyncio.Future[None] | None = None  # a worker waiting for a full batch
        self.carry: Job | None = None  # taken from the queue but too big for the last batch
        self.running = 0  # batches being computed now
        self.last_rows = 0  # rows of the batch taken last
        self.tasks: list[asyncio.Task[None]] = []

    def put(self, job: Job, batch_size: int) -> None:
        self.jobs.append(job)
        while self.idle:
            waiter = self.idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if self.filling is not None and len(self.jobs) >= batch_size:
            _wake(self.filling)

    async def job_or_wake(self) -> None:
        """Until a job is queued (or the batcher retires)."""
        waiter = self.loop.create_future()
        self.idle.append(waiter)
        await waiter

    async def fill(self, delay_s: float) -> None:
        """Until `put` fills a batch, or `delay_s` passes."""
        self.filling = waiter = self.loop.create_future()
        timer = self.loop.call_later(delay_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.filling = None

    def wake_all(self) -> None:
        for waiter in self.idle:
            _wake(waiter)
        self.idle.clear()
        if self.filling is not None:
            _wake(self.filling)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Batcher:
    def __init__(self, model: LoadedModel, executor: Executor, max_batch_size: int,
                 max_delay_s: float, max_queue: int, workers: int = 2,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.model = model
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self.workers = workers
        self.on_batch = on_batch
        self.batch_s: float | None = None  # measured network time per batch
        self._failures = _Failures(model.key)
        self.retired = False
        # One lane per event loop that submits: the server's loop, and any other (e.g. a
        # pipeline step calling `asyncio.run(serving.predict(...))`); a closed loop's lane goes.
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = \
            weakref.WeakKeyDictionary()
        self._lanes_lock = threading.Lock()

    @property
    def depth(self) -> int:
        with self._lanes_lock:
            return sum(len(lane.jobs) for lane in self._lanes.values())

    def _lane(self) -> _Lane:
        loop = asyncio.get_running_loop()
        with self._lanes_lock:
            lane = self._lanes.get(loop)
            if lane is None:
                lane = self._lanes[loop] = _Lane(loop, self.max_queue)
                lane.tasks = [loop.create_task(self._work(lane)) for _ in range(self.workers)]
            return lane

    async def submit(self, raw: list[Any] | None = None, tensor: np.ndarray | None = None) -> \
            BatchResult:
        """Queue one request and wait for its result (the caller applies its own timeout)."""
        return await self.enqueue(raw, tensor)  # type: ignore[no-any-return]

    def enqueue(self, raw: list[Any] | None = None, tensor: np.ndarray | None = None) -> \
            asyncio.Future[BatchResult]:
        """Queue one request; the future gets its `BatchResult`. Cancelling the future (a
        timeout) drops the request if its batch has not started. Waiting on the future rather
        than on `submit` spares the request path a task."""
        if self.retired:
            raise Retired()
        lane = self._lane()
        rows = len(raw) if raw is not None else int(tensor.shape[0])  # type: ignore[union-attr]
        if len(lane.jobs) >= lane.max_queue:
            raise ResourceExhausted(
                f"model {self.model.key} has {self.max_queue} requests waiting; retry after "
                "a short pause or add replicas",
                {"retry_after_s": 1, "max_queue": self.max_queue},
            )
        fut: asyncio.Future[Any] = lane.loop.create_future()
        lane.put(Job(raw, tensor, rows, fut), self.max_batch_size)
        return fut

    def retire(self) -> None:
        """Take no new requests; workers stop once their queue is empty."""
        self.retired = True
        with self._lanes_lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            if not lane.loop.is_closed():
                try:
                    lane.loop.call_soon_threadsafe(lane.wake_all)
                except RuntimeError:  # closed meanwhile
                    pass

    async def _work(self, lane: _Lane) -> None:
        jobs = lane.jobs
        while True:
            if lane.carry is None and not jobs:
                if self.retired:
                    return
                await lane.job_or_wake()
                continue
            if lane.carry is not None:
                first, lane.carry = lane.carry, None
            else:
                first = jobs.popleft()
            batch, rows = [first], first.rows
            if rows < self.max_batch_size and self.max_delay_s > 0 and \
                    self._under_load(lane) and len(jobs) + rows < self.max_batch_size:
                await lane.fill(self.max_delay_s)
            while rows < self.max_batch_size and jobs:
                job = jobs.popleft()
                if rows + job.rows > self.max_batch_size:
                    lane.carry = job
                    break
                batch.append(job)
                rows += job.rows
            batch = [j for j in batch if not j.future.done()]  # drop timed-out requests
            lane.last_rows = rows
            if batch:
                lane.running += 1
                try:
                    await self._run(batch)
                finally:
                    lane.running -= 1

    def _under_load(self, lane: _Lane) -> bool:
        """Whether waiting for more rows can pay: every other worker (at least one) is running
        a batch, or (for a model run in the pool) the last batch had several rows, so requests
        arrive faster than batches finish. A lone request on an idle model never waits."""
        if lane.running >= max(1, self.workers - 1):
            return True
        pooled = self.batch_s is None or self.batch_s >= INLINE_BELOW_S
        return pooled and lane.last_rows > 1

    async def _run(self, batch: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.batch_s is not None and self.batch_s < INLINE_BELOW_S:
                # A batch of this model takes less than a thread hop's worth of the loop's
                # time: run it right here. Requests arriving meanwhile wait in the socket
                # buffers and form the next batch.
                results = self._compute(batch)
            else:
                results = await loop.run_in_executor(self.executor, self._compute, batch)
        except Exception as e:  # noqa: BLE001 - the whole batch failed (e.g. the runtime)
            self._failures.failed(e, len(batch))
            results = [e] * len(batch)
        else:
            # a job's own fault not of its input (its labels could not be decoded)
            faults = [r for r in results if isinstance(r, Exception)
                      and not isinstance(r, ModelyardError)]
            if faults:
                self._failures.failed(faults[0], len(faults))
            elif self._failures.batches:
                self._failures.succeeded()
        for job, res in zip(batch, results, strict=True):
            if job.future.done():
                continue
            if isinstance(res, ModelyardError) or not isinstance(res, BaseException):
                if isinstance(res, BaseException):
                    job.future.set_exception(res)  # its own bad input: a 4xx
                else:
                    job.future.set_result(res)
            else:
                failed = BatchFailed(f"model {self.model.key} failed to answer "
                                     f"({type(res).__name__}); the server log has details",
                                     {"retry_after_s": 1})
                failed.__cause__ = res
                job.future.set_exception(failed)

    def _compute(self, batch: list[Job]) -> list[BatchResult | BaseException]:
        """In a pool thread: prepare the jobs, run the network once, split the logits.

        Raw inputs are prepared, and logits decoded, for the whole batch at once (per call the
        numpy work costs more than per row); only a batch where that fails goes job by job,
        so one bad request fails alone."""
        out: list[BatchResult | BaseException | None] = [None] * len(batch)
        parts, joined = self._prepared(batch, out)
        if not parts:
            return out  # type: ignore[return-value]
        if joined is not None and len(parts) == len(batch):
            x = joined  # every job was raw: the parts are its slices
        else:
            x = np.concatenate([p for _, p in parts]) if len(parts) > 1 else parts[0][1]
        if self.on_batch is not None:
            self.on_batch(int(x.shape[0]))
        started = time.perf_counter()
        logits = self.model.run(x)
        took = time.perf_counter() - started
        # moving average of the network's time per batch (picks inline vs pool above)
        self.batch_s = took if self.batch_s is None else 0.7 * self.batch_s + 0.3 * took
        summaries = self.model.summaries(x)  # the whole batch at once, off the event loop
        try:
            decoded: list[dict[str, Any]] | None = self.model.pre.decode(logits)
        except Exception:  # noqa: BLE001 - decoded job by job below, to fail only the culprit
            decoded = None
        start = 0
        for i, p in parts:
            n = p.shape[0]
            rows, end = logits[start:start + n], start + n
            # a tensor job gets its labels too, where the batch decoded (for its event)
            preds = decoded[start:end] if decoded is not None else None
            if preds is None and batch[i].raw is not None:
                try:
                    preds = self.model.pre.decode(rows)
                except Exception as e:  # noqa: BLE001 - a preprocessing bug fails its request
                    out[i] = e
                    start = end
                    continue
            out[i] = BatchResult(logits=rows, inputs=p, predictions=preds,
                                 summaries=summaries[start:end])
            start = end
        return out  # type: ignore[return-value]

    def _prepared(self, batch: list[Job], out: list[Any]) -> \
            tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
        """(job index, network input) of each job that prepares, the others' errors in `out`;
        and the raw jobs' inputs prepared together, where that worked."""
        raw = [i for i, job in enumerate(batch) if job.tensor is None]
        joined = None
        if len(raw) > 1:
            try:
                joined = self.model.prepare([r for i in raw for r in batch[i].raw or []])
            except ModelyardError:
                pass  # some input is bad: prepared job by job below, so it fails alone
        parts: list[tuple[int, np.ndarray]] = []
        start = 0
        for i, job in enumerate(batch):
            if job.tensor is not None:
                parts.append((i, job.tensor))
            elif joined is not None:
                parts.append((i, joined[start:start + job.rows]))
                start += job.rows
            else:
                try:
                    parts.append((i, self.model.prepare(job.raw or [])))
                except ModelyardError as e:
                    out[i] = e
        return parts, joined
