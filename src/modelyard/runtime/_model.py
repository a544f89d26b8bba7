"""`save_model`: export to ONNX, upload, register a model version with its lineage."""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path
from typing import Any

from modelyard.runtime._context import client, context, with_retry
from modelyard.runtime._io import flush_metrics


def save_model(model: Any, example_input: Any, *, preprocessing: dict[str, Any] | None = None,
               name: str | None = None, metrics: dict[str, float] | None = None
               ) -> dict[str, Any] | None:
    """Registers `model` as a new version of model `name` (rank 0 only; others get None).

    The network is exported to ONNX (dynamo exporter, dynamic batch axis, input `input`,
    output `logits`) and uploaded with its state_dict; the version records the signature,
    `preprocessing`, `metrics` and the run, job, snapshot and code it came from.
    """
    import torch

    ctx = context()
    if not ctx.is_main:
        return None
    flush_metrics()
    net = model.module if hasattr(model, "module") else model
    net = net.cpu().eval()
    example_input = example_input.detach().cpu()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(net, example_input, path)
        onnx_bytes = path.read_bytes()
    state = io.BytesIO()
    torch.save(net.state_dict(), state)
    with torch.no_grad():
        out = net(example_input)
    meta = {
        "name": name or ctx.trainer or "model",
        "signature": {
            "inputs": [{"name": "input", "dtype": "float32",
                        "shape": [-1, *list(example_input.shape[1:])]}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": [-1, *list(out.shape[1:])]}],
        },
        "preprocessing": preprocessing,
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "framework": "onnx",
    }
    files = {"model.onnx": onnx_bytes, "model.pt": state.getvalue()}
    return with_retry(  # type: ignore[no-any-return]
        lambda: client().training.register_model(ctx.job_id, meta, files), "register the model")




def export_onnx(net: Any, example_input: Any, path: Path) -> None:
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return self.inner(input)  # type: ignore[no-any-return]

    example = example_input
    if example.shape[0] < 2:  # a batch of one would be specialised away
        example = torch.cat([example, example], dim=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own deprecations, not ours
        program = torch.onnx.export(
            Wrapped(net).eval(), (example,), input_names=["input"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    assert program is not None
    program.save(str(path))
