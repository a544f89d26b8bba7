"""Where a batch runs: a network that answers in microseconds runs on the event loop (a
thread hop would cost more than the network); a slow one runs in the pool, and the loop keeps
serving while it computes (it is free to: the batch is on another thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from modelyard.serving.batcher import Batcher
from modelyard.serving.runtime import LoadedModel, ModelKey
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


def test_requests_arriving_while_the_batch_workers_compute_form_one_batch() -> None:
    """One batch worker (a process with one core of its own): the first request runs at once,
    the seven that arrive while it computes run together as the next batch."""

    async def scenario() -> tuple[list[int], list[str]]:
        model = GatedModel(ModelKey("p", "digits", 1), onnx_model(1.0), PREPROCESSING)
        sizes: list[int] = []
        pixels = digits().test_x[:8]
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher(model, pool, max_batch_size=8, max_delay_s=0.002, max_queue=64,
                              workers=1, on_batch=sizes.append)
            first = asyncio.ensure_future(batcher.submit(raw=[pixels[0].tolist()]))
            while not model.started.is_set():
                await asyncio.sleep(0.001)
            rest = [asyncio.ensure_future(batcher.submit(raw=[img.tolist()]))
                    for img in pixels[1:]]
            await asyncio.sleep(0.01)  # let them all queue
            model.gate.set()
            results = await asyncio.gather(first, *rest)
            batcher.retire()
        return sizes, [r.predictions[0]["label"] for r in results]  # type: ignore[index]

    sizes, labels = asyncio.run(scenario())
    assert sizes == [1, 7]
    assert labels == expected_labels(1.0, digits().test_x[:8])
