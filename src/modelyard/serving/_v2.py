"""Open Inference Protocol (KServe v2) JSON tensors: strict decoding and encoding."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelyard.core.errors import InvalidArgument
from modelyard.serving.models import TensorIn, TensorMeta, TensorOut
from modelyard.serving.runtime import V2_TO_NUMPY

_INT_TYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8"}


def decode_inputs(inputs: list[TensorIn], expected: list[TensorMeta]) -> np.ndarray:
    """The one input tensor of a single-input model, validated against its metadata."""
    names = [m.name for m in expected]
    given = [t.name for t in inputs]
    if len(inputs) != 1 or len(expected) != 1 or given[0] != names[0]:
        raise InvalidArgument(
            f"the model takes exactly the inputs {names}; the request sent {given}",
            {"expected": names, "got": given})
    return decode_tensor(inputs[0], expected[0])


def decode_tensor(t: TensorIn, meta: TensorMeta) -> np.ndarray:
    if t.datatype != meta.datatype:
        raise InvalidArgument(
            f"input {t.name!r} has datatype {t.datatype}, but the model expects {meta.datatype}",
            {"input": t.name, "expected": meta.datatype, "got": t.datatype})
    if not t.shape or any(d < 0 for d in t.shape):
        raise InvalidArgument(f"input {t.name!r} needs a shape of non-negative sizes, got {t.shape}",
                              {"input": t.name})
    want_rank, want = len(meta.shape), meta.shape
    if len(t.shape) != want_rank or any(w not in (-1, g) for w, g in zip(want, t.shape,
                                                                          strict=True)):
        raise InvalidArgument(
            f"input {t.name!r} has shape {t.shape}, but the model expects {want} (-1: any size)",
            {"input": t.name, "expected": want, "got": t.shape})
    n = math.prod(t.shape)
    dtype = V2_TO_NUMPY.get(t.datatype)
    if dtype is None or t.datatype == "BYTES":
        raise InvalidArgument(f"datatype {t.datatype} is not supported for input {t.name!r}")
    try:
        flat = _flatten(t.data, t.datatype)
        arr = np.asarray(flat, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidArgument(f"input {t.name!r} holds values that are not {t.datatype}: {e}",
                              {"input": t.name}) from e
    if arr.size != n:
        raise InvalidArgument(
            f"input {t.name!r} has {arr.size} values, but shape {t.shape} needs {n}",
            {"input": t.name, "values": int(arr.size), "expected_values": n})
    return arr.reshape(t.shape)


def _flatten(data: list[Any], datatype: str) -> list[Any]:
    """Row-major flattening of (possibly nested) JSON lists, rejecting mixed-up values."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            if datatype == "BOOL":
                if not isinstance(v, bool):
                    raise ValueError(f"{v!r} is not a boolean")
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{v!r} is not a number")
            elif datatype in _INT_TYPES and isinstance(v, float) and not v.is_integer():
                raise ValueError(f"{v!r} is not an integer")
            out.append(v)
        else:
            stack.pop()
    return out


def encode_tensor(name: str, arr: np.ndarray, datatype: str) -> TensorOut:
    return TensorOut(name=name, shape=list(arr.shape), datatype=datatype,
                     data=arr.reshape(-1).tolist())
