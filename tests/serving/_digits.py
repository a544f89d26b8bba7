"""A real small digits classifier as an ONNX graph, registered through the real registry."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

LABELS = [str(d) for d in range(10)]
PREPROCESSING = {"kind": "image", "height": 8, "width": 8, "scale": 1 / 255, "labels": LABELS}


@dataclass(frozen=True)
class Digits:
    train_x: np.ndarray  # (N, 8, 8) pixels 0..240 (digits 0..16 stored ×15)
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


@cache
def digits() -> Digits:
    d = load_digits()
    x = (d.images * 15).astype(np.float32)
    return Digits(x[:1400], d.target[:1400], x[1400:], d.target[1400:])


@cache
def classifier(c: float) -> LogisticRegression:
    d = digits()
    return LogisticRegression(C=c, max_iter=500).fit(d.train_x.reshape(-1, 64) / 255, d.train_y)


def expected_labels(c: float, pixels: np.ndarray) -> list[str]:
    return [str(int(v)) for v in classifier(c).predict(pixels.reshape(-1, 64) / 255)]


@cache
def onnx_model(c: float, pad_bytes: int = 0) -> bytes:
    """Flatten -> MatMul -> Add: input `input` float32 (N, 1, 8, 8), output `logits` (N, 10).

    `pad_bytes` adds an unused weight so the file (and the cache's size estimate) is larger.
    """
    clf = classifier(c)
    w = numpy_helper.from_array(clf.coef_.T.astype(np.float32), "w")
    b = numpy_helper.from_array(clf.intercept_.astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["mm"]),
         helper.make_node("Add", ["mm", "b"], ["logits"])],
        "digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[w, b] + ([numpy_helper.from_array(
            np.zeros(pad_bytes // 4, dtype=np.float32), "pad")] if pad_bytes else []),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def register(registry: object, project: str, model: str, blob: bytes,
             snapshot: str | None = None) -> int:
    """Uploads `blob` as model.onnx and registers the next version of `model` (trained on
    `snapshot`, a dataset snapshot id, if given); its number."""
    art = registry.put_artifact(project, blob, name="model.onnx")  # type: ignore[attr-defined]
    mv = registry.register_version(  # type: ignore[attr-defined]
        project, model, artifacts={"model.onnx": art.digest}, framework="onnx",
        preprocessing=PREPROCESSING, dataset_snapshot_id=snapshot)
    return int(mv.version)
