"""tabular-mlp: an MLP for a tabular snapshot's target, a class or a number.

Everything learned from data is learned from the train split only and travels inside the
exported network: each numeric feature's mean (which also fills its missing values) and
standard deviation, each string feature's categories (one-hot; unknown or missing: all zeros)
and, for a number target, its mean and std (the network predicts in standard units and scales
back). Serving then needs only the raw named features (the `tabular` preprocessing spec).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from torch import nn

from modelyard import runtime
from modelyard._preprocessing_tabular import TabularPreprocessor
from modelyard.datasets._tabular import Tabular
from modelyard.training.builtin._common import TrialPruned, finish, fit, label_names, rows_of
from modelyard.training.trainers import TabularMlpParams

MAX_CATEGORIES = 100  # most frequent values one-hot encoded per string feature


class Encoded(nn.Module):
    """The raw feature row (numbers; string features as category indices; NaN: missing) ->
    imputed, standardised numbers and one-hot categories -> the MLP -> logits or a number."""

    numeric: torch.Tensor  # buffers: exported as constants of the graph
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, numeric: list[int], mean: list[float], std: list[float],
                 categorical: list[tuple[int, int]], body: nn.Module,
                 target: tuple[float, float] | None) -> None:
        super().__init__()
        self.register_buffer("numeric", torch.tensor(numeric, dtype=torch.long))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.categorical = categorical  # (column, number of categories)
        self.body = body
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        if len(self.numeric):
            num = torch.index_select(x, 1, self.numeric)
            num = torch.where(torch.isnan(num), self.mean, num)
            parts.append((num - self.mean) / self.std)
        for col, k in self.categorical:
            codes = x[:, col:col + 1]  # NaN and -1 match no category
            parts.append((codes == torch.arange(k, dtype=x.dtype)).to(x.dtype))
        out = self.body(torch.cat(parts, dim=1))
        if self.target is not None:
            out = out * self.target[1] + self.target[0]
        return out


def mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Module:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inputs if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(hidden, outputs))


def _stats(values: list[float]) -> tuple[float, float]:
    known = [v for v in values if not math.isnan(v)]
    if not known:
        return 0.0, 1.0
    mean = sum(known) / len(known)
    std = math.sqrt(sum((v - mean) ** 2 for v in known) / len(known))
    return mean, std if std > 1e-12 else 1.0


def rmse(model: nn.Module, x: torch.Tensor, y: torch.Tensor, distributed: bool = False) -> float:
    """Validation RMSE in the target's units (the network scales back itself)."""
    model.eval()
    with torch.no_grad():
        err = float(torch.sqrt(torch.mean((model(x)[:, 0] - y) ** 2))) if len(y) else 0.0
    model.train()
    return err


class _StandardLoss(nn.Module):
    """MSE in standard units: the network's output is scaled back, so the loss divides by
    the target's std again, keeping the learning rate independent of the target's scale."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.mean(((out[:, 0] - y) / self.std) ** 2)


def main() -> int:
    ctx = runtime.context()
    hp = TabularMlpParams.model_validate(ctx.hyperparameters)
    torch.manual_seed(hp.seed)
    snap = runtime.snapshot()
    kind = Tabular(snap.get("config") or {})
    train = rows_of(runtime.dataset("train", shard=False))
    val = rows_of(runtime.dataset("validation", shard=False))
    features = kind.features
    spec: list[dict[str, Any]] = []
    for name, t in features.items():
        if t == "string":
            counts = Counter(str(r["values"][name]) for r in train
                             if r["values"][name] is not None)
            cats = sorted(counts, key=lambda c: (-counts[c], c))[:MAX_CATEGORIES]
            spec.append({"name": name, "type": t, "categories": cats})
        else:
            spec.append({"name": name, "type": t})
    regression = kind.task == "regression"
    names = [] if regression else label_names(snap, [r["label"] for r in train + val])
    pre = TabularPreprocessor(spec, kind.task, names)

    def tensors(rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(pre.transform([r["values"] for r in rows]))
        if regression:
            return x, torch.tensor([float(r["target"]) for r in rows], dtype=torch.float32)
        return x, torch.tensor([r["label"] for r in rows], dtype=torch.long)

    x, y = tensors(train)
    xv, yv = tensors(val)
    numeric = [i for i, f in enumerate(spec) if f["type"] != "string"]
    moments = [_stats(x[:, i].tolist()) for i in numeric]
    categorical = [(i, len(f["categories"])) for i, f in enumerate(spec) if f["type"] == "string"]
    width = len(numeric) + sum(k for _, k in categorical)
    target = _stats(y.tolist()) if regression else None
    body = mlp(width, hp.hidden, hp.layers, 1 if regression else len(names))
    model = Encoded(numeric, [m for m, _ in moments], [s for _, s in moments], categorical,
                    body, target)
    print(f"tabular-mlp: {kind.task} of {kind.target!r}, {len(x)} train rows, {len(xv)} "
          f"validation rows, {len(spec)} features ({width} network inputs)", flush=True)
    extra: dict[str, Any] = {}
    if regression:
        assert target is not None
        extra = {"loss_fn": _StandardLoss(target[1]), "score": rmse, "metric": "val_rmse"}
    try:
        trained, score = fit(model, x, y, xv, yv, lr=hp.lr, epochs=hp.epochs,
                           batch_size=hp.batch_size, seed=hp.seed, **extra)
    except TrialPruned:
        finish()
        return 0
    metric = "val_rmse" if regression else "val_accuracy"
    version = runtime.save_model(trained, x[:2], preprocessing=pre.spec(),
                                 name=hp.model_name or "tabular-mlp", metrics={metric: score})
    if version:
        print(f"registered {version.get('name')} version {version.get('version')} "
              f"({metric}={score:.4f})", flush=True)
    finish()
    return 0
