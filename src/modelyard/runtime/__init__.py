"""What trainer code imports inside a job.

>>> from modelyard import runtime
>>> ctx = runtime.context()              # job id, rank, world size, hyperparameters
>>> train = runtime.dataset("train")     # this rank's shard of the job's dataset snapshot
>>> runtime.log_metrics(epoch, loss=0.3, val_accuracy=0.97)
>>> runtime.save_checkpoint({"model": model.state_dict(), "epoch": epoch})
>>> state = runtime.load_checkpoint()    # the job's latest checkpoint, or None
>>> runtime.save_model(model, example_input, preprocessing=spec, name="digits")

Everything talks to the server through the SDK with the job's own scoped token.
"""

from __future__ import annotations

from modelyard.runtime._context import Context, context
from modelyard.runtime._io import (
    dataset,
    flush_metrics,
    init_distributed,
    load_checkpoint,
    log_metrics,
    save_checkpoint,
    snapshot,
)
from modelyard.runtime._model import save_model

__all__ = [
    "Context",
    "context",
    "dataset",
    "flush_metrics",
    "init_distributed",
    "load_checkpoint",
    "log_metrics",
    "save_checkpoint",
    "save_model",
    "snapshot",
]
