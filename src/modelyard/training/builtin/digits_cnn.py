"""digits-cnn: a small CNN for 8x8 grayscale digit images."""

from __future__ import annotations

import torch
from torch import nn

from modelyard import runtime
from modelyard.preprocessing import ImagePreprocessor
from modelyard.training.builtin._common import (
    TrialPruned,
    finish,
    fit,
    label_index,
    label_names,
    rows_of,
)
from modelyard.training.trainers import DigitsCnnParams

SIZE = 8


def network(channels: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
        nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(channels * 2 * (SIZE // 2) ** 2, 64), nn.ReLU(),
        nn.Linear(64, classes),
    )


def main() -> int:
    ctx = runtime.context()
    hp = DigitsCnnParams.model_validate(ctx.hyperparameters)
    torch.manual_seed(hp.seed)
    snap = runtime.snapshot()
    train = rows_of(runtime.dataset("train", seed=hp.seed))
    val = rows_of(runtime.dataset("validation", shard=False))
    names = label_names(snap, [r["label"] for r in train + val])
    pre = ImagePreprocessor(SIZE, SIZE, 1 / 255, names)

    def tensors(rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[type-arg]
        x = torch.from_numpy(pre.transform([r["image"] for r in rows]))
        y = torch.tensor([label_index(r["label"], names) for r in rows], dtype=torch.long)
        return x, y

    x, y = tensors(train)
    xv, yv = tensors(val)
    print(f"digits-cnn: rank {ctx.rank}/{ctx.world_size}, {len(x)} train rows, "
          f"{len(xv)} validation rows, {len(names)} classes", flush=True)
    model = network(hp.channels, len(names))
    try:
        model, val_acc = fit(model, x, y, xv, yv, lr=hp.lr, epochs=hp.epochs,
                             batch_size=hp.batch_size, seed=hp.seed)
    except TrialPruned:
        finish()
        return 0
    version = runtime.save_model(model, xv[:2], preprocessing=pre.spec(),
                                 name=hp.model_name or "digits-cnn",
                                 metrics={"val_accuracy": val_acc})
    if version:
        print(f"registered model version {version.get('version')} "
              f"(val_accuracy={val_acc:.4f})", flush=True)
    finish()
    return 0
