"""Datasets in, metrics and checkpoints out."""

from __future__ import annotations

import atexit
import io
import threading
import time
from functools import cache
from typing import Any

from modelyard.runtime._context import client, context, with_retry

FLUSH_EVERY_S = 2.0
FLUSH_AT = 200

_lock = threading.Lock()
_buffer: list[dict[str, Any]] = []
_last_flush = time.monotonic()


@cache
def snapshot() -> dict[str, Any]:
    """The job's dataset snapshot (as the datasets service describes it)."""
    ctx = context()
    if not ctx.dataset_snapshot:
        raise RuntimeError("this job has no dataset snapshot")
    snap = with_retry(lambda: client().datasets.get_snapshot(ctx.dataset_snapshot),
                      "fetch the dataset snapshot")
    return snap if isinstance(snap, dict) else snap.model_dump(mode="json")


def dataset(split: str, *, shard: bool = True, seed: int = 0, epoch: int = 0) -> Any:
    """A torch Dataset of row dicts of `split`; with `shard`, only this rank's part."""
    from modelyard.runtime.data import open_split

    ctx = context()
    rank, world = (ctx.rank, ctx.world_size) if shard else (0, 1)
    return open_split(snapshot(), split, rank=rank, world_size=world, seed=seed, epoch=epoch)


def log_metrics(step: int, **values: float) -> None:
    """Buffers metric values at `step` (rank 0 only); sent every few seconds and at exit."""
    if not context().is_main:
        return
    now = time.time()
    with _lock:
        _buffer.extend({"key": k, "step": int(step), "value": float(v), "time": now}
                       for k, v in values.items())
        due = len(_buffer) >= FLUSH_AT or time.monotonic() - _last_flush > FLUSH_EVERY_S
    if due:
        flush_metrics()


def flush_metrics() -> None:
    global _last_flush
    with _lock:
        points = list(_buffer)
        _buffer.clear()
        _last_flush = time.monotonic()
    if points:
        ctx = context()
        with_retry(lambda: client().training.log_metrics(ctx.job_id, points), "log metrics")


atexit.register(flush_metrics)


def save_checkpoint(state: dict[str, Any]) -> str | None:
    """Saves `state` (torch-serialisable) as the job's latest checkpoint; rank 0 only."""
    import torch

    ctx = context()
    if not ctx.is_main:
        return None
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    return with_retry(lambda: client().training.put_checkpoint(ctx.job_id, data),  # type: ignore[no-any-return]
                      "save a checkpoint")


def load_checkpoint() -> dict[str, Any] | None:
    """The job's latest checkpoint (e.g. from an earlier attempt), or None."""
    import torch

    ctx = context()
    data = with_retry(lambda: client().training.get_checkpoint(ctx.job_id), "load a checkpoint")
    if data is None:
        return None
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def init_distributed() -> bool:
    """Joins the job's process group when it has several workers (gloo on CPU, nccl on GPU)."""
    ctx = context()
    if not ctx.distributed:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return True
