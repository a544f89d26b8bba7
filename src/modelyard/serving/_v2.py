"""Open Inference Protocol (KServe v2) tensors: strict decoding and encoding, as JSON or with
the binary tensor data extension (what `tritonclient.http` sends by default).

Binary requests carry `Inference-Header-Content-Length: N`: the first N bytes are the JSON
header, then each input's raw little-endian bytes, in order, sized by its
`parameters.binary_data_size`. Outputs come back binary when the request asks for it
(`parameters.binary_data_output`, or an output's `parameters.binary_data`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError
from starlette.responses import JSONResponse

from modelyard.core.errors import InvalidArgument, ModelyardError
from modelyard.server.errors import error_headers
from modelyard.server.limits import MAX_JSON_DEPTH, json_too_deep
from modelyard.serving.models import InferRequest, TensorIn, TensorMeta
from modelyard.serving.runtime import V2_TO_NUMPY

HEADER_LENGTH = "Inference-Header-Content-Length"
_INT_TYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8"}


@dataclass(frozen=True)
class Outcome:
    model_name: str
    model_version: str
    id: str
    outputs: list[tuple[str, np.ndarray, str]]  # name, values, datatype
    model: str = ""  # the registry model behind the deployment `model_name`


def error_response(e: ModelyardError) -> JSONResponse:
    """`{"error": "<message>"}` (plus our code and details), which Open Inference Protocol
    clients such as tritonclient read as the message; status and Retry-After from the class."""
    return JSONResponse({"error": e.message, "code": e.code, "details": e.details},
                        status_code=e.status, headers=error_headers(e))


def parse_request(body: bytes, header_length: str | None) -> tuple[InferRequest, dict[str, bytes]]:
    """The JSON part of a request and the binary data of each input sent that way."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InvalidArgument(f"{HEADER_LENGTH} {header_length!r} does not fit a body of "
                                  f"{len(body)} bytes")
        head, rest = body[: int(header_length)], body[int(header_length):]
    else:
        head, rest = body, b""
    # the app's guard sees JSON bodies only; the JSON header of a binary request is checked here
    if json_too_deep(head):
        raise InvalidArgument(f"the request's JSON nests deeper than {MAX_JSON_DEPTH} levels; "
                              "flatten it")
    try:
        req = InferRequest.model_validate(_loads(head))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"the request body is not JSON: {e}") from e
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:5])
        raise InvalidArgument(f"invalid inference request: {problems}") from e
    blobs: dict[str, bytes] = {}
    offset = 0
    for t in req.inputs:
        size = (t.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(rest):
            raise InvalidArgument(f"input {t.name!r}: binary_data_size {size!r} does not fit the "
                                  f"{len(rest)} bytes of binary data sent")
        blobs[t.name] = rest[offset: offset + size]
        offset += size
    if offset != len(rest):
        raise InvalidArgument(f"{len(rest) - offset} bytes of binary data belong to no input")
    return req, blobs


def decode_inputs(inputs: list[TensorIn], expected: list[TensorMeta],
                  blobs: dict[str, bytes] | None = None) -> np.ndarray:
    """The one input tensor of a single-input model, validated against its metadata."""
    names = [m.name for m in expected]
    given = [t.name for t in inputs]
    if len(inputs) != 1 or len(expected) != 1 or given[0] != names[0]:
        raise InvalidArgument(
            f"the model takes exactly the inputs {names}; the request sent {given}",
            {"expected": names, "got": given})
    return decode_tensor(inputs[0], expected[0], (blobs or {}).get(inputs[0].name))


def decode_tensor(t: TensorIn, meta: TensorMeta, raw: bytes | None = None) -> np.ndarray:
    if t.datatype != meta.datatype:
        raise InvalidArgument(
            f"input {t.name!r} has datatype {t.datatype}, but the model expects {meta.datatype}",
            {"input": t.name, "expected": meta.datatype, "got": t.datatype})
    if not t.shape or any(d < 0 for d in t.shape):
        raise InvalidArgument(f"input {t.name!r} needs a shape of non-negative sizes, got {t.shape}",
                              {"input": t.name})
    want = meta.shape
    if len(t.shape) != len(want) or any(w not in (-1, g) for w, g in zip(want, t.shape,
                                                                          strict=True)):
        raise InvalidArgument(
            f"input {t.name!r} has shape {t.shape}, but the model expects {want} (-1: any size)",
            {"input": t.name, "expected": want, "got": t.shape})
    dtype = V2_TO_NUMPY.get(t.datatype)
    if dtype is None or t.datatype == "BYTES":
        raise InvalidArgument(f"datatype {t.datatype} is not supported for input {t.name!r}")
    n = math.prod(t.shape)
    if raw is not None:
        item = np.dtype(dtype).itemsize
        if len(raw) != n * item:
            raise InvalidArgument(
                f"input {t.name!r} has {len(raw)} bytes of binary data, but shape {t.shape} of "
                f"{t.datatype} needs {n * item}", {"input": t.name})
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype) \
            .reshape(t.shape)
    if t.data is None:
        raise InvalidArgument(f"input {t.name!r} has no data (nor binary_data_size)",
                              {"input": t.name})
    try:
        arr = np.asarray(_flatten(t.data, t.datatype), dtype=dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidArgument(f"input {t.name!r} holds values that are not {t.datatype}: {e}",
                              {"input": t.name}) from e
    if arr.size != n:
        raise InvalidArgument(
            f"input {t.name!r} has {arr.size} values, but shape {t.shape} needs {n}",
            {"input": t.name, "values": int(arr.size), "expected_values": n})
    return arr.reshape(t.shape)


def _loads(text: bytes) -> Any:
    """JSON by orjson (an eighth of the standard parser's time on a tensor of floats); what it
    refuses (NaN, integers past 64 bits, bad UTF-8) the standard parser reads or explains."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# the element types a flat list may hold to go to numpy as it is, by datatype
_FLAT_KINDS: dict[str, set[type]] = {"BOOL": {bool}, **{t: {int} for t in _INT_TYPES}}
_NUMBERS: set[type] = {int, float}


def _flatten(data: list[Any], datatype: str) -> list[Any]:
    """Row-major flattening of (possibly nested) JSON lists, rejecting mixed-up values."""
    if set(map(type, data)) <= _FLAT_KINDS.get(datatype, _NUMBERS):
        return data  # already flat, every value of the right kind (what clients mostly send)
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


def wants_binary(req: InferRequest) -> bool:
    if (req.parameters or {}).get("binary_data_output"):
        return True
    return any((o.parameters or {}).get("binary_data") for o in req.outputs or [])


def render(outcome: Outcome, binary: bool) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (JSON, or JSON header + binary data)."""
    outputs = []
    chunks = []
    for name, arr, datatype in outcome.outputs:
        meta: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
        if binary:
            data = np.ascontiguousarray(arr, dtype=np.dtype(arr.dtype).newbyteorder("<"))
            chunk = data.tobytes()
            meta["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            meta["data"] = arr.reshape(-1).tolist()
        outputs.append(meta)
    # orjson: a twentieth of the standard encoder's time for a row of logits; a non-finite
    # value is written as null (the standard encoder's NaN is not JSON)
    head = orjson.dumps({"model_name": outcome.model_name,
                         "model_version": outcome.model_version, "id": outcome.id,
                         "outputs": outputs})
    # the protocol's body has no field for the registry model: headers carry the trace
    trace = {"x-request-id": outcome.id, "x-modelyard-deployment": outcome.model_name,
             "x-modelyard-model": outcome.model,
             "x-modelyard-model-version": outcome.model_version}
    if not binary:
        return head, {"content-type": "application/json", **trace}
    return head + b"".join(chunks), {"content-type": "application/octet-stream",
                                     HEADER_LENGTH: str(len(head)), **trace}
