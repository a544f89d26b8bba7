"""What the built-in trainers share: label handling, DDP helpers, the epoch loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from modelyard import runtime


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
    return [ds[i] for i in range(len(ds))]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    model.train()
    return float((pred == y).float().mean().item()) if len(y) else 0.0


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


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
        *, lr: float, epochs: int, batch_size: int, seed: int,
        on_epoch: Callable[[int, float, float], None] | None = None) -> tuple[nn.Module, float]:
    """Trains with Adam, resuming from the job's checkpoint; returns (model, val accuracy).

    After every epoch the metrics are sent and, when the job is a study's trial, the pruner
    asked: a pruned trial raises `TrialPruned` at that epoch boundary."""
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
        dist.all_reduce(n, op=dist.ReduceOp.MIN)
    n_local = int(n.item())
    loss_fn = nn.CrossEntropyLoss()
    val_acc = accuracy(model, xv, yv)
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
        val_acc = accuracy(model, xv, yv)
        train_loss = total / max(count, 1)
        print(f"epoch {epoch + 1}/{epochs} train_loss={train_loss:.4f} "
              f"val_accuracy={val_acc:.4f}", flush=True)
        runtime.log_metrics(epoch, train_loss=train_loss, val_accuracy=val_acc)
        if pruned(distributed, device):
            print(f"pruned by its study after epoch {epoch + 1}; stopping", flush=True)
            raise TrialPruned(epoch)
        runtime.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                 "epoch": epoch})
        if on_epoch:
            on_epoch(epoch, train_loss, val_acc)
    if distributed:
        dist.barrier()
    return model, val_acc


def finish() -> None:
    runtime.flush_metrics()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
