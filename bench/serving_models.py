"""The models of the serving benchmark, trained here briefly and exported to ONNX, with the
request each server gets and the labels ONNX Runtime gives for the check inputs.

- `digits`: the builtin digits-cnn network (16 channels); raw input: one 8x8 image, 0..240.
- `intent`: the builtin intent-classifier network (embedding dim 64) over the chatterbot
  corpus; raw input: one utterance (the server runs the model's own tokenizer).
- `intent-wide`: the same network with a 4,096-wide embedding (a 1,502 x 4,096 weight, 25 MB):
  a batch of one reads every weight to answer one row, a batch of 32 reads them once for 32,
  so this is where dynamic batching pays (batching gain only).
- `noop`: Flatten + Slice of an 8x8 input, no arithmetic (the per-request overhead).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DIGIT_LABELS = [str(d) for d in range(10)]
DIGITS_PRE: dict[str, Any] = {"kind": "image", "height": 8, "width": 8, "scale": 1 / 255,
                              "labels": DIGIT_LABELS}
WIDE_DIM = 4096


@dataclass(frozen=True)
class Workload:
    """One model as the benchmark serves it."""

    name: str
    model: Path
    preprocessing: dict[str, Any]
    body: bytes  # the request every load level sends: one raw input
    check_inputs: list[Any]  # sent one per request before any load
    want: list[str]  # ONNX Runtime's labels for check_inputs
    description: str

    def body_of(self, raw: Any) -> bytes:
        return json.dumps({"inputs": [raw]}).encode()

    def label_of(self, answer: Any) -> str:
        """The label in one answer: `{"predictions": [...]}` (BentoML's: the bare list)."""
        preds = answer if isinstance(answer, list) else answer["predictions"]
        return str(preds[0]["label"])


@dataclass(frozen=True)
class V2Workload(Workload):
    """An image model through the Open Inference Protocol: the client sends the network's input
    tensor (the image scaled as the preprocessing spec says), as tritonclient users do, and
    reads the label off the logits."""

    def body_of(self, raw: Any) -> bytes:
        pre = self.preprocessing
        x = np.asarray(raw, dtype=np.float32) * np.float32(pre["scale"])
        shape = [1, 1, pre["height"], pre["width"]]
        return json.dumps({"inputs": [{"name": "input", "shape": shape, "datatype": "FP32",
                                       "data": x.reshape(-1).tolist()}]}).encode()

    def label_of(self, answer: Any) -> str:
        return str(self.preprocessing["labels"][int(np.argmax(answer["outputs"][0]["data"]))])


def v2_of(work: Workload) -> V2Workload:
    """The same model, inputs and expected labels as `work`, asked over v2."""
    fields = {f.name: getattr(work, f.name) for f in dataclasses.fields(work)}
    v2 = V2Workload(**{**fields, "name": f"{work.name}-v2",
                       "description": f"{work.description}, sent to POST /v2/models/{{name}}/"
                                      "infer as a 1x1x8x8 FP32 JSON tensor"})
    return dataclasses.replace(v2, body=v2.body_of(work.check_inputs[0]))


def _fit(net: Any, x: Any, y: Any, epochs: int, lr: float) -> Any:
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    return net.eval()


def _labels(model: Path, x: np.ndarray, names: list[str]) -> list[str]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": x.astype(np.float32)})[0]
    return [names[int(i)] for i in logits.argmax(axis=1)]


def digits(work: Path, checks: int = 64) -> Workload:
    import torch
    from sklearn.datasets import load_digits

    from modelyard.runtime._model import export_onnx
    from modelyard.training.builtin.digits_cnn import network

    d = load_digits()
    pixels = (d.images * 15).astype(np.float32)  # 0..240, as a camera-like raw input
    x = torch.from_numpy(pixels[:1400, None] / 255)
    y = torch.from_numpy(d.target[:1400]).long()
    torch.manual_seed(0)
    path = work / "digits.onnx"
    export_onnx(_fit(network(16, 10), x, y, epochs=5, lr=0.01), x[:2], path)
    test = pixels[1400:1400 + checks]
    return Workload("digits", path, DIGITS_PRE, json.dumps({"inputs": [test[0].tolist()]}).encode(),
                    [p.tolist() for p in test], _labels(path, test[:, None] / 255, DIGIT_LABELS),
                    "digits-cnn (builtin network, 16 channels): one raw 8x8 image per request")


def intent(work: Path, dim: int = 64, name: str = "intent", checks: int = 64) -> Workload:
    import torch

    from modelyard.datasets.sources import builtin
    from modelyard.preprocessing import TextPreprocessor, build_vocab
    from modelyard.runtime._model import export_onnx
    from modelyard.training.builtin.intent_classifier import network

    _, _, rows = builtin("chatterbot:intents")
    texts = [r["text"] for r in rows]
    names = sorted({r["labels"][0] for r in rows})
    pre = TextPreprocessor(build_vocab(texts, 5000), 32, names)
    x = torch.from_numpy(pre.transform(texts))
    y = torch.tensor([names.index(r["labels"][0]) for r in rows])
    torch.manual_seed(0)
    order = torch.randperm(len(x))
    path = work / f"{name}.onnx"
    wide = dim > 256  # trained less: its answers only have to match ONNX Runtime's
    export_onnx(_fit(network(pre.size, dim, len(names)), x[order], y[order],
                     epochs=2 if wide else 8, lr=0.002 if wide else 0.02), x[:2], path)
    check = texts[::max(1, len(texts) // checks)][:checks]
    return Workload(name, path, pre.spec(), json.dumps({"inputs": [texts[0]]}).encode(), check,
                    _labels(path, pre.transform(check), names),
                    f"intent-classifier (builtin network, embedding dim {dim}, vocabulary "
                    f"{pre.size}, {len(names)} intents): one raw utterance per request")


def noop(work: Path, body: bytes) -> Workload:
    """input (N, 1, 8, 8) -> the first 10 pixels as `logits`: no arithmetic at all; `body` is
    the digits request."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    consts = [numpy_helper.from_array(np.array(v, dtype=np.int64), n)
              for n, v in (("start", [0]), ("end", [10]), ("axis", [1]))]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("Slice", ["flat", "start", "end", "axis"], ["logits"])],
        "noop",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path = work / "noop.onnx"
    path.write_bytes(model.SerializeToString())
    return Workload("noop", path, DIGITS_PRE, body, [], [],
                    "Flatten + Slice of the 8x8 input: no arithmetic")
