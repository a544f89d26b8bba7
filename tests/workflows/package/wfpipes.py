"""The pipelines of the workflow tests: a user's code package, uploaded by the tests (see
`tests/workflows/_packages.py`) with `_digits.py` beside it, and loaded and run in the sandbox,
never imported by the server. Steps count their runs in files of a `workdir` parameter (the
tests run these with the sandbox off, so steps and tests share the host's files)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from modelyard.workflows import Pipeline, StepContext, kinds, step


def mark(workdir: str, name: str, text: str = "x") -> None:
    with open(Path(workdir) / f"{name}.log", "a") as f:
        f.write(text + "\n")


def count(workdir: str, name: str) -> int:
    p = Path(workdir) / f"{name}.log"
    return len(p.read_text().splitlines()) if p.exists() else 0


def _wait_for(path: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return False


# -- caching: a(x) -> b(a); c(y); d(b, c) ---------------------------------------------------
@step
def a(x: int, workdir: str) -> int:
    mark(workdir, "a")
    return x * 10


@step
def b(a: int, workdir: str) -> int:
    mark(workdir, "b")
    return a + 1


@step
def c(y: int, workdir: str) -> str:
    mark(workdir, "c")
    return f"y={y}"


@step
def d(b: int, c: str, workdir: str) -> dict[str, object]:
    mark(workdir, "d")
    return {"b": b, "c": c}


cached = Pipeline("cached", [a, b, c, d], params={"x": 1, "y": 2, "workdir": "."})


# -- parallel branches meet only if both run at once -----------------------------------------
@step
def root(workdir: str) -> str:
    return workdir


@step(timeout_s=20)
def left(root: str) -> str:
    (Path(root) / "left.started").touch()
    if not _wait_for(Path(root) / "right.started", 15):
        raise RuntimeError("right branch never ran alongside")
    return "left"


@step(timeout_s=20)
def right(root: str) -> str:
    (Path(root) / "right.started").touch()
    if not _wait_for(Path(root) / "left.started", 15):
        raise RuntimeError("left branch never ran alongside")
    return "right"


@step
def join(left: str, right: str) -> list[str]:
    return [left, right]


parallel = Pipeline("parallel", [root, left, right, join], params={"workdir": "."})


# -- retries, timeouts, cancellation ---------------------------------------------------------
@step(retries=3, backoff_s=0.05, cache=False)
def flaky(workdir: str) -> str:
    mark(workdir, "flaky")
    if count(workdir, "flaky") < 3:
        raise ConnectionError("transient failure")
    return "ok"


retrying = Pipeline("retrying", [flaky], params={"workdir": "."})


@step(timeout_s=0.5, cache=False)
def sleepy(workdir: str) -> str:
    mark(workdir, "sleepy")
    time.sleep(30)
    return "woke"


@step
def after_sleepy(sleepy: str, workdir: str) -> str:
    mark(workdir, "after")
    return sleepy


timing_out = Pipeline("timing-out", [sleepy, after_sleepy], params={"workdir": "."})


@step(cache=False)
def blocker(workdir: str) -> str:
    mark(workdir, "blocker")
    time.sleep(60)
    return "done"


@step
def after_blocker(blocker: str, workdir: str) -> str:
    mark(workdir, "after")
    return blocker


cancellable = Pipeline("cancellable", [blocker, after_blocker], params={"workdir": "."})


# -- fan-out -----------------------------------------------------------------------------------
@step
def numbers(n: int) -> list[int]:
    return list(range(1, n + 1))


@step(map_over="numbers")
def square(numbers: int) -> int:
    return numbers * numbers


@step
def total(square: list[int]) -> int:
    return sum(square)


fanout = Pipeline("fanout", [numbers, square, total], params={"n": 4})


# -- outputs that are not JSON go to the content store ---------------------------------------
@step
def matrix(n: int) -> Any:
    import numpy as np

    return np.eye(n)


@step
def trace(matrix: Any) -> float:
    return float(matrix.trace())


arrays = Pipeline("arrays", [matrix, trace], params={"n": 3})


# -- a gate over a condition -------------------------------------------------------------------
@step
def score(n: int) -> dict[str, int]:
    return {"value": n}


@step
def ship(enough: bool, workdir: str) -> str:
    mark(workdir, "ship")
    return "shipped"


gated = Pipeline("gated", [score, kinds.gate("enough", "score", "value", ">=", 5), ship],
                 params={"n": 1, "workdir": "."})


# -- a canary release of a chosen version (e2e) ----------------------------------------------
@step
def pick(model: str, version: int) -> dict[str, Any]:
    return {"model": model, "version": version}


canary_only = Pipeline("canary-only", [pick, kinds.canary("release", "pick", "digits",
                                                          percent=50)],
                       params={"model": "digits-cnn", "version": 1, "canary_observe_s": 1.0})


# -- a small HPO study feeding the registry (e2e) ---------------------------------------------
tuned = Pipeline("tuned", [
    kinds.import_dataset("import_digits", "digits", "sklearn:digits"),
    kinds.dataset_snapshot("snapshot", "digits", after="import_digits"),
    kinds.hpo_study("study", "snapshot", "digits-cnn",
                    {"lr": {"type": "float", "low": 0.005, "high": 0.05, "log": True}},
                    metric="val_accuracy", n_trials=2, max_parallel=2,
                    hyperparameters={"epochs": 1}),
    kinds.model_version("best", "study"),
])


# -- resume after a crash: s1 -> s2 -> s3, s2 blocks until released -------------------------
@step
def s1(workdir: str) -> str:
    mark(workdir, "s1", str(os.getpid()))
    return "one"


@step
def s2(s1: str, workdir: str, ctx: StepContext) -> str:
    mark(workdir, "s2", str(os.getpid()))
    job = ctx.effect("job", lambda: (mark(workdir, "submitted"), "job-1")[1])
    (Path(workdir) / "s2.running").touch()
    while not (Path(workdir) / "release").exists():
        time.sleep(0.05)
    return f"{s1}+{job}"


@step
def s3(s2: str, workdir: str) -> str:
    mark(workdir, "s3")
    return s2 + "+three"


resumable = Pipeline("resumable", [s1, s2, s3], params={"workdir": "."})


# -- invalid definitions (built lazily: registering them must fail) --------------------------
def cyclic() -> Pipeline:
    @step
    def p(q: int) -> int:
        return q

    @step
    def q(p: int) -> int:
        return p

    @step
    def ok(n: int) -> int:
        return n

    return Pipeline("cyclic", [ok, p, q], params={"n": 1})


def missing_input() -> Pipeline:
    @step
    def first(n: int) -> int:
        return n

    @step
    def second(first: int, nowhere: str) -> str:
        return nowhere

    return Pipeline("missing", [first, second], params={"n": 1})


def mismatched() -> Pipeline:
    @step
    def produce(n: int) -> str:
        return str(n)

    @step
    def consume(produce: int) -> int:
        return produce

    return Pipeline("mismatched", [produce, consume], params={"n": 1})


# -- where steps run: each Python step in a sandboxed process of its own -----------------
@step
def step_pid() -> int:
    return os.getpid()


@step
def next_pid(step_pid: int) -> list[int]:
    return [step_pid, os.getpid()]


where = Pipeline("where", [step_pid, next_pid])


# -- a failing step waits out its backoff before trying again ---------------------------------
@step(retries=2, backoff_s=20, cache=False)
def down(workdir: str) -> str:
    mark(workdir, "down")
    raise ConnectionError("the service is down")


backing_off = Pipeline("backing-off", [down], params={"workdir": "."})


# -- a model built by an inline step, registered, promoted and deployed --------------------
@step
def fit_digits(c: float) -> dict[str, Any]:
    from _digits import classifier, digits, onnx_model

    d = digits()
    accuracy = float(classifier(c).score(d.test_x.reshape(-1, 64) / 255, d.test_y))
    return {"artifacts": {"model.onnx": onnx_model(c)}, "metrics": {"test_accuracy": accuracy}}


def registered() -> Pipeline:
    from _digits import PREPROCESSING

    return Pipeline("registered", [
        fit_digits,
        kinds.register_model("register", "fit_digits", "digits-lr", preprocessing=PREPROCESSING),
        kinds.move_alias("promote", "register", "production"),
        kinds.deploy("deploy", "promote", "digits-lr"),
    ], params={"c": 1.0})


# -- a step's way to the platform: the SDK, with a token of its own ----------------------------
@step(cache=False)
def api_calls(ctx: StepContext) -> dict[str, Any]:
    c = ctx.client
    mine = [p["name"] for p in c.workflows.list()]
    try:
        c.workflows.list(project="beta")
        other = "allowed"
    except Exception as e:  # noqa: BLE001 - what the server answered is the point
        other = type(e).__name__
    token = c._t.headers["Authorization"].split()[1]
    return {"token": token, "mine": mine, "other": other}


calling = Pipeline("calling", [api_calls])


# -- a pipeline that sets the alias it is triggered on (issue 22 item 16) ---------------------
@step
def moved(event: dict[str, Any]) -> dict[str, Any]:
    return {"model": event["model"], "version": event["version"]}


repromote = Pipeline("repromote", [moved, kinds.move_alias("again", "moved", "production")],
                     params={"event": {}})


# -- a step that prints, then fails (issue 22 item 19) ---------------------------------------
@step(cache=False)
def noisy(shard: int) -> None:
    print(f"loading shard {shard}", flush=True)
    for i in range(3):
        print(f"row {i} ok")
    raise ValueError(f"shard {shard} has a bad row")


failing = Pipeline("failing", [noisy], params={"shard": 7})
