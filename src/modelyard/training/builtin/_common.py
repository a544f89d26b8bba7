"""What the built-in trainers share: label handling, DDP helpers, the epoch loop.

The distributed path does per rank only its share of the work: its shard of the training rows,
its slice of the validation rows (the correct counts are summed over ranks, so the accuracy is
the whole validation set's), and rank 0 uploads each checkpoint while the next epoch trains.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from modelyard import runtime

TAKE_ROWS = 8192  # rows read per Lance take


def label_names(snapshot: dict[str, Any], rows: Sequence[Any]) -> list[str]:
    names = snapshot.get("label_names") or []
    if names:
        return [str(n) for n in names]
    return sorted({str(label) for label in rows})


def label_index(label: Any, names: list[str]) -> int:
    if isinstance(label, int) and not isinstance(label, bool):
        return label
    return names.index(str(label))


def rows_of(ds: Any) -> list[dict[str, Any]]:
    """Every row of a dataset in its order, read a few thousand at a time (one take each, not
    one per row: 1,400 digits rows take 3 ms instead of 0.4 s)."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ds), TAKE_ROWS):
        rows.extend(ds.__getitems__(list(range(start, min(start + TAKE_ROWS, len(ds))))))
    return rows


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             distributed: bool = False) -> float:
    """Accuracy on (x, y); distributed, each rank scores its slice and the counts are summed,
    so every rank gets the accuracy of the whole set for half (a world's share of) the work."""
    if distributed:
        rank, world = dist.get_rank(), dist.get_world_size()
        x, y = x[rank::world], y[rank::world]
    model.eval()
    with torch.no_grad():
        correct = float((model(x).argmax(dim=1) == y).sum()) if len(y) else 0.0
    model.train()
    counts = torch.tensor([correct, float(len(y))], dtype=torch.float64, device=y.device)
    if distributed:
        dist.all_reduce(counts)
    return float(counts[0] / counts[1]) if counts[1] else 0.0


class TrialPruned(Exception):  # noqa: N818 - Optuna's name for the same thing
    """The job is a trial its study pruned: stop training, register nothing."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch


def pruned(distributed: bool, device: torch.device) -> bool:
    """Whether the study pruned this trial, on the epoch just logged (False for other jobs).

    Rank 0 asks (its metrics are the ones logged) and every rank gets its answer, so all
    ranks stop at the same epoch."""
    from modelyard.hpo.client_hooks import should_prune

    answer = should_prune() if runtime.context().is_main else False
    if distributed:
        flag = torch.tensor([int(answer)], device=device)
        dist.broadcast(flag, src=0)
        answer = bool(flag.item())
    return answer


class BackgroundCheckpoints:
    """Rank 0 uploads a checkpoint while the next epoch trains (the other ranks would wait for
    the upload at their next all-reduce). One upload at a time, on one reused thread: `save`
    waits for the previous one; `wait` returns once the last is stored, or raises its error."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[str | None] | None = None

    def save(self, state: dict[str, Any]) -> None:
        self.wait()
        if not runtime.context().is_main:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="modelyard-checkpoint")
        # a copy: training goes on changing the tensors of `state`
        self._last = self._pool.submit(runtime.save_checkpoint, copy.deepcopy(state))

    def wait(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
        *, lr: float, epochs: int, batch_size: int, seed: int,
        on_epoch: Callable[[int, float, float], None] | None = None,
        loss_fn: nn.Module | None = None,
        score: Callable[[nn.Module, torch.Tensor, torch.Tensor, bool], float] = accuracy,
        metric: str = "val_accuracy") -> tuple[nn.Module, float]:
    """Trains with Adam, resuming from the job's checkpoint; returns (model, validation score).

    Classification by default (cross-entropy, scored by accuracy); a regression trainer
    passes its own `loss_fn`, `score` and the `metric` name the score is logged under.

    After every epoch the metrics are sent and, when the job is a study's trial, the pruner
    asked: a pruned trial raises `TrialPruned` at that epoch boundary. The epoch loop's wall
    time (start-up, data loading and model export excluded) is logged as `train_seconds`."""
    ctx = runtime.context()
    distributed = runtime.init_distributed()
    # The executor shows a job only the GPUs it was given; none means CPU.
    device = torch.device(f"cuda:{ctx.local_rank}" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    x, y, xv, yv = (t.to(device) for t in (x, y, xv, yv))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start = 0
    state = runtime.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["epoch"]) + 1
        print(f"resuming from the checkpoint of epoch {state['epoch']}", flush=True)
    net: nn.Module = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    # Every rank takes the same number of batches, or the all-reduce would hang.
    n = torch.tensor([len(x)], device=device)
    if distributed:
        dist.all_reduce(n, op=dist.ReduceOp.MIN)  # also lines the ranks up before the clock
    n_local = int(n.item())
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    checkpoints = BackgroundCheckpoints()
    val_acc = 0.0
    began = time.perf_counter()
    try:
        for epoch in range(start, epochs):
            g = torch.Generator().manual_seed(seed * 1000 + epoch * 10 + ctx.rank)
            order = torch.randperm(len(x), generator=g)[:n_local].to(device)
            net.train()
            total, count = 0.0, 0
            for i in range(0, n_local, batch_size):
                idx = order[i:i + batch_size]
                opt.zero_grad()
                loss = loss_fn(net(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss.item()) * len(idx)
                count += len(idx)
            val_acc = score(model, xv, yv, distributed)
            train_loss = total / max(count, 1)
            print(f"epoch {epoch + 1}/{epochs} train_loss={train_loss:.4f} "
                  f"{metric}={val_acc:.4f}", flush=True)
            runtime.log_metrics(epoch, train_loss=train_loss, **{metric: val_acc})
            if pruned(distributed, device):
                print(f"pruned by its study after epoch {epoch + 1}; stopping", flush=True)
                raise TrialPruned(epoch)
            checkpoints.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                              "epoch": epoch})
            if on_epoch:
                on_epoch(epoch, train_loss, val_acc)
    finally:
        checkpoints.close()
    if start >= epochs:  # resumed after its last epoch: nothing trained, score what there is
        val_acc = score(model, xv, yv, distributed)
    if distributed:
        dist.barrier()
    took = time.perf_counter() - began
    if epochs > start:
        print(f"trained epochs {start + 1}-{epochs} in {took:.2f} s on {ctx.world_size} "
              f"worker(s), {torch.get_num_threads()} thread(s) each", flush=True)
        runtime.log_metrics(epochs - 1, train_seconds=took)
    return model, val_acc


def finish() -> None:
    runtime.flush_metrics()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
