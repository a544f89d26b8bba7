"""Where a batch runs: a network that answers in microseconds runs on the event loop (a
thread hop would cost more than the network); a slow one runs in the pool, and the loop keeps
serving while it computes (it is free to: the batch is on another thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from modelyard.core.errors import InvalidArgument, ResourceExhausted
from modelyard.serving.batcher import Batcher, Retired
from modelyard.serving.runtime import LoadedModel, ModelKey, input_summaries
from tests.serving._digits import PREPROCESSING, digits, expected_labels, onnx_model


class SlowModel(LoadedModel):
    """The digits network plus 20 ms of work per batch (a large network, as far as the
    batcher can tell)."""

    def run(self, x: np.ndarray) -> np.ndarray:
        time.sleep(0.02)
        return super().run(x)


async def _serve(model: LoadedModel, requests: int) -> tuple[list[str], set[int], int]:
    """Sends `requests` single images one after another; returns the labels, the threads the
    batches ran on and the loop's thread."""
    threads: set[int] = set()
    with ThreadPoolExecutor(2) as pool:
        batcher = Batcher(model, pool, max_batch_size=8, max_delay_s=0.001, max_queue=64,
                          on_batch=lambda _n: threads.add(threading.get_ident()))
        pixels = digits().test_x[:requests]
        labels = []
        for img in pixels:
            res = await batcher.submit(raw=[img.tolist()])
            labels.append(res.predictions[0]["label"])  # type: ignore[index]
        batcher.retire()
    return labels, threads, threading.get_ident()


def test_a_fast_network_runs_on_the_loop_and_a_slow_one_in_the_pool() -> None:
    key = ModelKey("p", "digits", 1)
    fast = LoadedModel(key, onnx_model(1.0), PREPROCESSING)
    labels, threads, loop_thread = asyncio.run(_serve(fast, 40))
    assert labels == expected_labels(1.0, digits().test_x[:40])
    # the first batch goes to the pool (nothing measured yet); once measured, on the loop
    assert len(threads) == 2 and loop_thread in threads

    slow = SlowModel(key, onnx_model(1.0), PREPROCESSING)
    labels, threads, loop_thread = asyncio.run(_serve(slow, 10))
    assert labels == expected_labels(1.0, digits().test_x[:10])
    assert loop_thread not in threads  # every batch in the pool


class GatedModel(LoadedModel):
    """The digits network, whose batches wait for the test to open a gate."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.started = threading.Event()
        self.gate = threading.Event()

    def run(self, x: np.ndarray) -> np.ndarray:
        self.started.set()
        self.gate.wait(30)
        return super().run(x)


def _behind_a_running_batch(later: Callable[[GatedModel], list[dict[str, Any]]]) -> \
        tuple[list[int], list[Any]]:
    """One batch worker (a process with one core of its own): a first request (the first test
    image) runs and waits at the model's gate while the `later` requests (`Batcher.submit`
    keyword arguments) queue; then the gate opens. Returns the sizes of the batches run and
    each request's result or error, the first request's first."""

    async def scenario() -> tuple[list[int], list[Any]]:
        model = GatedModel(ModelKey("p", "digits", 1), onnx_model(1.0), PREPROCESSING)
        sizes: list[int] = []
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher(model, pool, max_batch_size=8, max_delay_s=0.002, max_queue=64,
                              workers=1, on_batch=sizes.append)
            first = asyncio.ensure_future(batcher.submit(raw=[digits().test_x[0].tolist()]))
            while not model.started.is_set():
                await asyncio.sleep(0.001)
            rest = [asyncio.ensure_future(batcher.submit(**kw)) for kw in later(model)]
            await asyncio.sleep(0.01)  # let them all queue
            model.gate.set()
            results = await asyncio.gather(first, *rest, return_exceptions=True)
            batcher.retire()
        return sizes, list(results)

    return asyncio.run(scenario())


def test_requests_arriving_while_the_batch_workers_compute_form_one_batch() -> None:
    """The first request runs at once, the seven that arrive while it computes run together as
    the next batch."""
    pixels = digits().test_x[:8]
    sizes, results = _behind_a_running_batch(
        lambda _model: [{"raw": [img.tolist()]} for img in pixels[1:]])
    assert sizes == [1, 7]
    assert [r.predictions[0]["label"] for r in results] == expected_labels(1.0, pixels)


def test_a_bad_request_fails_alone_in_a_batch_prepared_together() -> None:
    """A batch's raw inputs are prepared in one call; when one of them is bad, the batch is
    prepared request by request instead: the bad one gets its 4xx, the others (raw and
    tensor requests in the same batch) their right answers, from one network run."""
    pixels = digits().test_x[:5]
    sizes, results = _behind_a_running_batch(lambda model: [
        {"raw": [pixels[1].tolist()]},
        {"raw": [[[1.0, 2.0]]]},  # not 8x8
        {"raw": [pixels[2].tolist(), pixels[3].tolist()]},
        {"tensor": model.prepare([pixels[4].tolist()])},
    ])
    assert sizes == [1, 4]  # the second batch: 1 + 2 raw rows and the tensor, not the bad row
    bad = results[2]
    assert isinstance(bad, InvalidArgument) and "shape [1, 2]" in bad.message
    want = expected_labels(1.0, pixels)
    got = [p["label"] for r in (results[0], results[1], results[3]) for p in r.predictions]
    assert got == want[:4]
    tensor = results[4]
    assert str(int(tensor.logits.argmax())) == want[4]
    # labelled by the batch's one decode, for its prediction event
    assert [p["label"] for p in tensor.predictions] == [want[4]]


def test_raw_requests_batched_together_get_their_own_rows() -> None:
    """Prepared in one call, decoded in one call: each request still gets its own rows,
    inputs and summaries back."""
    pixels = digits().test_x[:7]
    chunks = (pixels[1:2], pixels[2:5], pixels[5:7])
    _, results = _behind_a_running_batch(
        lambda _model: [{"raw": [p.tolist() for p in chunk]} for chunk in chunks])
    want = expected_labels(1.0, pixels)
    assert [len(r.predictions) for r in results] == [1, 1, 3, 2]
    assert [p["label"] for r in results for p in r.predictions] == want
    third = results[2]
    assert third.inputs.shape == (3, 1, 8, 8)
    assert np.allclose(third.inputs[:, 0] * 255, pixels[2:5], atol=1e-3)
    assert [round(s["mean"], 3) for s in third.summaries] == \
        [round(float((p / 255).mean()), 3) for p in pixels[2:5]]


def test_input_summaries_are_each_rows_mean_and_std() -> None:
    rng = np.random.default_rng(1)
    for batch in (rng.random((5, 1, 8, 8), dtype=np.float32) * 16,
                  rng.integers(0, 9, size=(3, 1502)),
                  np.zeros((1, 4), dtype=np.float32)):
        rows = batch.reshape(batch.shape[0], -1).astype(np.float64)
        got = input_summaries(batch)
        assert [s["mean"] for s in got] == pytest.approx(rows.mean(axis=1).tolist(), abs=1e-5)
        assert [s["std"] for s in got] == pytest.approx(rows.std(axis=1).tolist(), abs=1e-5)
    assert input_summaries(np.array([["a"], ["b"]], dtype=object)) == [{}, {}]


def test_retiring_ends_idle_workers_at_once_and_queued_work_first() -> None:
    """Workers waiting for a job end when the batcher retires (no polling), after answering
    what was queued; a retired batcher takes nothing new."""

    async def scenario() -> None:
        model = LoadedModel(ModelKey("p", "digits", 1), onnx_model(1.0), PREPROCESSING)
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher(model, pool, max_batch_size=8, max_delay_s=0.002, max_queue=64,
                              workers=3)
            pixels = digits().test_x[:3]
            answers = [batcher.enqueue(raw=[p.tolist()]) for p in pixels]
            batcher.retire()
            labels = [(await a).predictions[0]["label"] for a in answers]
            assert labels == expected_labels(1.0, pixels)
            lane = next(iter(batcher._lanes.values()))
            await asyncio.wait_for(asyncio.gather(*lane.tasks), 0.2)  # well under any poll
            with pytest.raises(Retired):
                batcher.enqueue(raw=[pixels[0].tolist()])

    asyncio.run(scenario())


def test_a_full_queue_refuses_with_the_limit_and_keeps_what_it_holds() -> None:
    async def scenario() -> None:
        model = GatedModel(ModelKey("p", "digits", 1), onnx_model(1.0), PREPROCESSING)
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher(model, pool, max_batch_size=2, max_delay_s=0.0, max_queue=3,
                              workers=1)
            image = digits().test_x[0].tolist()
            running = batcher.enqueue(raw=[image])
            while not model.started.is_set():
                await asyncio.sleep(0.001)
            queued = [batcher.enqueue(raw=[image]) for _ in range(3)]
            with pytest.raises(ResourceExhausted) as refused:
                batcher.enqueue(raw=[image])
            assert refused.value.details["max_queue"] == 3
            model.gate.set()
            assert len(await asyncio.gather(running, *queued)) == 4
            batcher.retire()

    asyncio.run(scenario())
