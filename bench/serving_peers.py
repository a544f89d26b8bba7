"""The serving benchmark's peers: their venvs and their servers, each a few lines of the
peer's own documented API around the same ONNX Runtime session.

Every peer gets the same request (`{"inputs": [<8x8 pixels 0..240>]}` or `{"inputs":
["<utterance>"]}`), does the same work (the model's preprocessing spec: scale by 1/255, or the
tokenizer's word frequencies; one ONNX Runtime run with one intra-op thread, softmax, arg-max)
and answers
`{"predictions": [{"label", "confidence"}]}` (BentoML answers the bare list: its API returns
what the function returns). Batching uses each peer's own feature with the same limits.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._harness import make_peer_venv

ORT = "onnxruntime==1.32.0"  # the version modelyard runs, so every server runs the same runtime
TORCH = "torch==2.13.0"
WORKERS = 2  # worker processes / replicas per server: one per core of the reference machine
MAX_BATCH = 32
MAX_DELAY_MS = 2.0

PACKAGES: dict[str, list[str]] = {
    "fastapi": ["fastapi", "uvicorn[standard]", ORT, "numpy"],
    "litserve": ["litserve", ORT, "numpy"],
    "ray_serve": ["ray[serve]", ORT, "numpy"],
    "bentoml": ["bentoml", ORT, "numpy"],
    # TorchServe's worker imports torch: torch goes in first, alone, pinned
    "torchserve": ["torchserve", "torch-model-archiver", "pyyaml", TORCH, ORT, "numpy"],
}
NEEDS_TORCH = {"torchserve"}


def peer_python(peer: str) -> Path:
    """The peer's venv python (built on first use, reused while its package list holds)."""
    name = f"serving-{peer}"
    if peer not in NEEDS_TORCH:
        return make_peer_venv(name, PACKAGES[peer])
    python = make_peer_venv(name, [TORCH])
    stamp = python.parent.parent / ".serving-extras-stamp"
    wanted = hashlib.sha256("\n".join(sorted(PACKAGES[peer])).encode()).hexdigest()
    if not (stamp.is_file() and stamp.read_text().strip() == wanted):
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PACKAGES[peer]], check=True)
        stamp.write_text(wanted + "\n")
    return python

# The work every server does, shared verbatim by the peers' servers.
COMMON = '''
import json
import os
import re

import numpy as np
import onnxruntime as ort

MAX_BATCH = int(os.environ["BENCH_MAX_BATCH"])
MAX_DELAY_S = float(os.environ["BENCH_MAX_DELAY_MS"]) / 1000
WORKERS = int(os.environ["BENCH_WORKERS"])


def session(path=None):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.log_severity_level = 3
    return ort.InferenceSession(path or os.environ["BENCH_MODEL"], o,
                                providers=["CPUExecutionProvider"])


# The model's preprocessing spec (what modelyard stores with the version), applied here by
# each peer's own code: an 8x8 image scaled, or text as word frequencies over a vocabulary.
with open(os.environ["BENCH_PREPROCESSING"]) as f:
    PRE = json.load(f)
LABELS = PRE["labels"]
WORD = re.compile(r"[a-z0-9']+")


def to_batch(inputs):
    if PRE["kind"] == "image":
        return np.asarray(inputs, dtype=np.float32).reshape(-1, 1, PRE["height"],
                                                            PRE["width"]) * np.float32(PRE["scale"])
    texts = [str(t) for t in np.asarray(inputs, dtype=object).reshape(-1)]
    vocab, out = PRE["vocab"], np.zeros((len(texts), max(PRE["vocab"].values()) + 1), np.float32)
    for i, text in enumerate(texts):
        words = WORD.findall(text.lower())[:PRE["max_len"]] or ["<unk>"]
        for w in words:
            out[i, vocab.get(w, 0)] += 1.0
        out[i] /= len(words)
    return out


def decode(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return [{"label": LABELS[int(i)], "confidence": float(p[r, i])}
            for r, i in enumerate(p.argmax(axis=1))]


def run(sess, x):
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def split(preds, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(preds[start:start + n])
        start += n
    return out
'''

FASTAPI = COMMON + '''
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
sess = session()


class Req(BaseModel):
    inputs: list


@app.post("/predict")
def predict(req: Req) -> dict:
    return {"predictions": decode(run(sess, to_batch(req.inputs)))}
'''

LITSERVE = COMMON + '''
import sys

import litserve as ls


class Digits(ls.LitAPI):
    def setup(self, device):
        self.sess = session()

    def decode_request(self, request):
        return to_batch(request["inputs"])

    def batch(self, inputs):
        self.sizes = [len(x) for x in inputs]
        return np.concatenate(inputs)

    def predict(self, x):
        return decode(run(self.sess, x))

    def unbatch(self, output):
        return split(output, self.sizes)

    def encode_response(self, output):
        return {"predictions": output}


if __name__ == "__main__":
    api = Digits(max_batch_size=MAX_BATCH, batch_timeout=MAX_DELAY_S) if MAX_BATCH > 1 \\
        else Digits()
    ls.LitServer(api, accelerator="cpu", workers_per_device=WORKERS).run(
        port=int(sys.argv[1]), generate_client_file=False)
'''

RAY = COMMON + '''
import signal
import sys
import time

import ray
from ray import serve
from starlette.requests import Request


@serve.deployment(num_replicas=WORKERS, ray_actor_options={"num_cpus": 1},
                  max_ongoing_requests=1000)
class Digits:
    def __init__(self):
        self.sess = session()

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=MAX_DELAY_S)
    async def infer(self, xs):
        return split(decode(run(self.sess, np.concatenate(xs))), [len(x) for x in xs])

    async def __call__(self, request: Request):
        body = await request.json()
        return {"predictions": await self.infer(to_batch(body["inputs"]))}


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
    serve.run(Digits.bind(), route_prefix="/predict")
    try:
        while True:
            time.sleep(1)
    finally:
        serve.shutdown()
        ray.shutdown()
'''

BENTOML = COMMON + '''
import bentoml


@bentoml.service(workers=WORKERS)
class Digits:
    def __init__(self):
        self.sess = session()

    @bentoml.api(batchable=MAX_BATCH > 1, max_batch_size=MAX_BATCH,
                 max_latency_ms=int(os.environ.get("BENCH_BENTO_LATENCY_MS", "10000")))
    def predict(self, inputs: np.ndarray) -> list:
        return decode(run(self.sess, to_batch(inputs)))
'''

TORCHSERVE = COMMON + '''
_sess = None


def handle(data, context):
    global _sess
    if _sess is None:
        d = context.system_properties["model_dir"]
        _sess = session(os.path.join(d, next(f for f in os.listdir(d) if f.endswith(".onnx"))))
    if data is None:
        return None
    xs = []
    for row in data:
        body = row.get("body") or row.get("data")
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body)
        xs.append(to_batch(body["inputs"]))
    preds = split(decode(run(_sess, np.concatenate(xs))), [len(x) for x in xs])
    return [{"predictions": p} for p in preds]
'''


@dataclass(frozen=True)
class PeerServer:
    """How to start one peer: the command (run in `cwd`), its URL path, extra env."""

    command: list[str]
    path: str
    env: dict[str, str]


def prepare(peer: str, python: Path, work: Path, model: Path, preprocessing: dict[str, Any],
            port: int, max_batch: int) -> PeerServer:
    """Write the peer's server into `work` and return how to start it on `port`."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "preprocessing.json").write_text(json.dumps(preprocessing))
    env = {"BENCH_MODEL": str(model), "BENCH_MAX_BATCH": str(max_batch),
           "BENCH_PREPROCESSING": str(work / "preprocessing.json"),
           "BENCH_MAX_DELAY_MS": str(MAX_DELAY_MS), "BENCH_WORKERS": str(WORKERS),
           "PATH": f"{python.parent}:/usr/bin:/bin", "VIRTUAL_ENV": str(python.parent.parent)}
    bindir = python.parent
    if peer == "fastapi":
        (work / "server.py").write_text(FASTAPI)
        return PeerServer([str(python), "-m", "uvicorn", "server:app", "--host", "127.0.0.1",
                           "--port", str(port), "--workers", str(WORKERS)], "/predict", env)
    if peer == "litserve":
        (work / "server.py").write_text(LITSERVE)
        return PeerServer([str(python), "server.py", str(port)], "/predict", env)
    if peer == "ray_serve":
        (work / "server.py").write_text(RAY)
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        return PeerServer([str(python), "server.py", str(port)], "/predict", env)
    if peer == "bentoml":
        (work / "service.py").write_text(BENTOML)
        env["BENTOML_HOME"] = str(work / "bentoml-home")
        env["BENTOML_DO_NOT_TRACK"] = "True"
        return PeerServer([str(bindir / "bentoml"), "serve", "service:Digits", "--host",
                           "127.0.0.1", "--port", str(port)], "/predict", env)
    if peer == "torchserve":
        return _torchserve(bindir, work, model, port, max_batch, env)
    raise ValueError(f"unknown peer {peer!r}")


def _torchserve(bindir: Path, work: Path, model: Path, port: int, max_batch: int,
                env: dict[str, str]) -> PeerServer:
    (work / "handler.py").write_text(TORCHSERVE)
    store = work / "store"
    store.mkdir(exist_ok=True)
    if not (store / "digits").exists():
        subprocess.run([str(bindir / "torch-model-archiver"), "--model-name", "digits",
                        "--version", "1.0", "--serialized-file", str(model), "--handler",
                        str(work / "handler.py"), "--export-path", str(store),
                        "--archive-format", "no-archive"], check=True, env=env, cwd=work)
    models = {"digits": {"1.0": {"defaultVersion": True, "marName": "digits",
                                 "minWorkers": WORKERS, "maxWorkers": WORKERS,
                                 "batchSize": max_batch, "maxBatchDelay": int(MAX_DELAY_MS),
                                 "responseTimeout": 120}}}
    (work / "config.properties").write_text("\n".join([
        f"inference_address=http://127.0.0.1:{port}",
        f"management_address=http://127.0.0.1:{port + 1}",
        f"metrics_address=http://127.0.0.1:{port + 2}",
        "disable_token_authorization=true",
        "enable_envvars_config=false",
        "install_py_dep_per_model=false",
        f"default_workers_per_model={WORKERS}",
        "load_models=digits",
        f"models={json.dumps(models)}",
        f"model_store={store}",
        "vmargs=-Xmx512m -XX:+UseContainerSupport -XX:ActiveProcessorCount=2",
    ]) + "\n")
    env["LOG_LOCATION"] = str(work / "logs")
    env["METRICS_LOCATION"] = str(work / "logs")
    return PeerServer([str(bindir / "torchserve"), "--start", "--foreground", "--ncs",
                       "--disable-token-auth", "--ts-config", str(work / "config.properties"),
                       "--model-store", str(store)], "/predictions/digits", env)
