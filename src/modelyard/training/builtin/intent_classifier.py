"""intent-classifier: a bag-of-embeddings text classifier (mean of word embeddings → linear)."""

from __future__ import annotations

import torch
from torch import nn

from modelyard import runtime
from modelyard.preprocessing import TextPreprocessor, build_vocab
from modelyard.training.builtin._common import TrialPruned, finish, fit, label_names, rows_of
from modelyard.training.trainers import IntentClassifierParams


def network(vocab_size: int, dim: int, classes: int) -> nn.Module:
    # A linear map of word frequencies is the mean of the words' embeddings.
    return nn.Sequential(nn.Linear(vocab_size, dim, bias=False), nn.ReLU(),
                         nn.Linear(dim, classes))


def _label(row: dict) -> str:  # type: ignore[type-arg]
    labels = row.get("labels")
    if isinstance(labels, list) and labels:
        return str(labels[0])
    return str(row.get("label", ""))


def main() -> int:
    ctx = runtime.context()
    hp = IntentClassifierParams.model_validate(ctx.hyperparameters)
    torch.manual_seed(hp.seed)
    snap = runtime.snapshot()
    # The vocabulary must be the same on every rank: build it from the whole train split.
    full_train = rows_of(runtime.dataset("train", shard=False))
    train = rows_of(runtime.dataset("train", seed=hp.seed)) if ctx.distributed else full_train
    val = rows_of(runtime.dataset("validation", shard=False))
    names = label_names(snap, [_label(r) for r in full_train + val])
    pre = TextPreprocessor(build_vocab((r["text"] for r in full_train), hp.max_vocab),
                           hp.max_len, names)

    def tensors(rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[type-arg]
        x = torch.from_numpy(pre.transform([r["text"] for r in rows]))
        y = torch.tensor([names.index(_label(r)) for r in rows], dtype=torch.long)
        return x, y

    x, y = tensors(train)
    xv, yv = tensors(val)
    print(f"intent-classifier: {len(x)} train rows, {len(xv)} validation rows, "
          f"{len(names)} intents, vocabulary of {pre.size}", flush=True)
    model = network(pre.size, hp.embedding_dim, len(names))
    try:
        model, val_acc = fit(model, x, y, xv, yv, lr=hp.lr, epochs=hp.epochs,
                             batch_size=hp.batch_size, seed=hp.seed)
    except TrialPruned:
        finish()
        return 0
    runtime.save_model(model, xv[:2], preprocessing=pre.spec(),
                       name=hp.model_name or "intent-classifier",
                       metrics={"val_accuracy": val_acc})
    finish()
    return 0
