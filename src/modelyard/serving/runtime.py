"""A loaded model: the network (ONNX Runtime, TorchScript fallback) plus its own preprocessing."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modelyard.core.errors import FailedPrecondition, InvalidArgument
from modelyard.preprocessing import top_class
from modelyard.serving.models import TensorMeta

# onnx element types -> Open Inference Protocol datatypes (and numpy)
ONNX_TO_V2 = {
    "tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(float16)": "FP16",
    "tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(int16)": "INT16",
    "tensor(int8)": "INT8", "tensor(uint8)": "UINT8", "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
V2_TO_NUMPY: dict[str, Any] = {
    "FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64,
    "INT32": np.int32, "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_,
    "BYTES": np.object_,
}
SIZE_FACTOR = 3  # resident memory of a loaded model ≈ this × its file size


@dataclass(frozen=True)
class ModelKey:
    project: str
    model: str
    version: int

    def __str__(self) -> str:
        return f"{self.project}/{self.model}@{self.version}"


class Preprocessor(Protocol):
    def transform(self, raw_inputs: list[Any]) -> np.ndarray: ...

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]: ...


class _Numeric:
    """For versions without a preprocessing spec: inputs are numbers, labels are class indices."""

    def transform(self, raw_inputs: list[Any]) -> np.ndarray:
        try:
            return np.asarray(raw_inputs, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(
                "this model version has no preprocessing, so inputs must be equal-length lists "
                f"of numbers: {e}") from e

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        best, confidence = top_class(logits)
        return [{"label": str(i), "confidence": c} for i, c in zip(best, confidence, strict=True)]


def build_preprocessor(spec: dict[str, Any]) -> Preprocessor:
    if not spec:
        return _Numeric()
    from modelyard import preprocessing

    return preprocessing.build(spec)


class LoadedModel:
    """A network ready to run; `run` is thread safe and may be called from a pool."""

    platform = "onnxruntime_onnx"

    def __init__(self, key: ModelKey, blob: bytes, preprocessing: dict[str, Any],
                 framework: str = "onnx") -> None:
        self.key = key
        self.size_bytes = len(blob) * SIZE_FACTOR
        self.pre = build_preprocessor(preprocessing)
        self.inputs: list[TensorMeta]
        self.outputs: list[TensorMeta]
        if framework == "torch":
            self._init_torch(blob)
        else:
            self._init_onnx(blob)

    def _init_onnx(self, blob: bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # Parallelism comes from running several batches at once; one thread per run is
        # fastest for small networks and keeps a busy server from oversubscribing cores.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise FailedPrecondition(f"model {self.key} cannot be loaded by ONNX Runtime: {e}") \
                from e
        self.inputs = [_meta(i) for i in self._session.get_inputs()]
        self.outputs = [_meta(o) for o in self._session.get_outputs()]
        self._run = self._run_onnx

    def _init_torch(self, blob: bytes) -> None:
        """The fallback runtime: a `torch.export` program saved with `torch.export.save`."""
        import torch

        self.platform = "pytorch_export"
        try:
            program = torch.export.load(io.BytesIO(blob))
        except Exception as e:  # noqa: BLE001 - torch raises many unrelated types
            raise FailedPrecondition(f"model {self.key} cannot be loaded by torch.export: {e}") \
                from e
        self._module = program.module()
        self.inputs = [TensorMeta(name="input", datatype="FP32", shape=_export_shape(program))]
        self.outputs = [TensorMeta(name="logits", datatype="FP32", shape=[-1, -1])]
        self._run = self._run_torch

    @property
    def input_name(self) -> str:
        return self.inputs[0].name

    @property
    def input_dtype(self) -> Any:
        return V2_TO_NUMPY.get(self.inputs[0].datatype, np.float32)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits (the first output) for a batch `x`."""
        return self._run(x)

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._run == self._run_torch:
            return {"logits": self._run_torch(feeds["input"])}
        outs = self._session.run(None, feeds)
        return {m.name: np.asarray(v) for m, v in zip(self.outputs, outs, strict=True)}

    def _run_onnx(self, x: np.ndarray) -> np.ndarray:
        out = self._session.run([self.outputs[0].name], {self.input_name: x})
        return np.asarray(out[0])

    def _run_torch(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self._module(torch.from_numpy(np.ascontiguousarray(x))).numpy()  # type: ignore[no-any-return]

    def prepare(self, raw_inputs: list[Any]) -> np.ndarray:
        """Raw client inputs -> the network's input batch (rows = len(raw_inputs))."""
        try:
            x = self.pre.transform(raw_inputs)
        except InvalidArgument:
            raise
        except Exception as e:  # noqa: BLE001 - any failure here is a bad input
            raise InvalidArgument(f"inputs do not fit the preprocessing of {self.key}: {e}") from e
        x = np.asarray(x)
        if x.shape[0] != len(raw_inputs):
            raise InvalidArgument(f"preprocessing gave {x.shape[0]} rows for {len(raw_inputs)} "
                                  "inputs; send one raw input per item of `inputs`")
        self.check_shape(x)
        return x.astype(self.input_dtype, copy=False)

    def summaries(self, x: np.ndarray) -> list[dict[str, Any]]:
        return summaries_of(self.pre, x)

    def check_shape(self, x: np.ndarray) -> None:
        want = self.inputs[0].shape
        if len(want) != x.ndim or any(w not in (-1, g) for w, g in zip(want, x.shape, strict=True)):
            raise InvalidArgument(
                f"input of shape {list(x.shape)} does not fit {self.key}, which expects "
                f"{want} (-1: any size)", {"expected": want, "got": list(x.shape)})


def _export_shape(program: Any) -> list[int]:
    """The first user input's shape, dynamic sizes as -1."""
    names = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in names and "val" in node.meta:
            return [d if type(d) is int else -1 for d in node.meta["val"].shape]
    return [-1]


def _meta(arg: Any) -> TensorMeta:
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or [])]
    return TensorMeta(name=arg.name, datatype=ONNX_TO_V2.get(arg.type, arg.type), shape=shape)


def summaries_of(pre: Preprocessor, x: np.ndarray) -> list[dict[str, Any]]:
    """Each prepared input row's summary for its prediction event: the preprocessing's own
    where it has one (tabular: per-feature values), else `input_summaries`."""
    own = getattr(pre, "summaries", None)
    return own(x) if own is not None else input_summaries(x)  # type: ignore[no-any-return]


def input_summaries(batch: np.ndarray) -> list[dict[str, float]]:
    """A compact summary of each input row, kept with its prediction event (for drift)."""
    if batch.dtype == np.object_ or batch.ndim == 0 or batch.size == 0:
        return [{} for _ in range(batch.shape[0] if batch.ndim else 0)]
    # One pass of float64 sums (of x and x²), then per-row arithmetic in Python: on the few
    # rows of a batch each numpy call costs more than its arithmetic (~3 µs on 2 cores), and
    # `ndarray.mean`/`.std` make several. Accurate enough for a summary rounded to 5 places.
    r = batch.reshape(batch.shape[0], -1)
    k = r.shape[1]
    sums = np.add.reduce(r, axis=1, dtype=np.float64).tolist()
    squares = np.add.reduce(np.square(r, dtype=np.float64), axis=1).tolist()
    out = []
    for total, square in zip(sums, squares, strict=True):
        mean = total / k
        std = math.sqrt(max(square / k - mean * mean, 0.0))
        out.append({"mean": round(mean, 5), "std": round(std, 5)})
    return out
