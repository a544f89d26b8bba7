"""The trusted part of a sandboxed pipeline process: `python -m modelyard.workflows._sandboxed
load|step IN_DIR`, started by the server (`_runner`) inside the sandbox, never in the server.

It reads `IN_DIR` (read-only: `request.json`, the package as `package.tar`, pickled inputs
under `inputs/`), unpacks the package into its private working directory, imports the entry
and then either describes the pipeline (`load`) or runs one step (`step`). It answers on the
pipe that was its stdout (the user's prints go to stderr), one JSON header line per message,
raw bytes after it where the header says `size`:

    {"effect": key, "value": ..., "seq": n}   the server records it, then creates acks/<n>
    {"definition": size}                      load: the pipeline's JSON document
    {"result": "json" | "pickle", "size": n}  step: tagged JSON, or a pickle of the value
    {"error": message, "code": ..., "details": {...}, "traceback": ...}

Everything it sends is untrusted again on the server's side: user code ran in this process.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import select
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

ACK_POLL_S = 0.01


class _Channel:
    def __init__(self, out: IO[bytes], in_dir: Path) -> None:
        self.out, self.in_dir = out, in_dir
        self.seq = itertools.count(1)

    def send(self, header: dict[str, Any], data: bytes = b"") -> None:
        self.out.write(json.dumps(header).encode() + b"\n" + data)
        self.out.flush()

    def record(self, key: str, value: Any) -> None:
        """Sends an effect and waits until the server has stored it (its ack file appears)."""
        n = next(self.seq)
        self.send({"effect": key, "value": value, "seq": n})
        ack = self.in_dir / "acks" / str(n)
        while not ack.exists():
            time.sleep(ACK_POLL_S)


def _build(entry: str) -> Any:
    from modelyard.core.errors import InvalidArgument
    from modelyard.workflows.dsl import Pipeline

    module_name, _, attr = entry.partition(":")
    import importlib

    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj()
    if not isinstance(obj, Pipeline):
        raise InvalidArgument(f"{entry!r} is a {type(obj).__name__}, not a "
                              "modelyard.workflows.Pipeline (or a function returning one)")
    return obj


def _load(ch: _Channel, req: dict[str, Any]) -> None:
    from modelyard.workflows._spec import describe

    data = json.dumps(describe(_build(req["entry"]))).encode()
    ch.send({"definition": len(data)}, data)


def _step(ch: _Channel, req: dict[str, Any]) -> None:
    from modelyard.workflows import _codec
    from modelyard.workflows.context import StepContext

    pipeline = _build(req["entry"])
    spec = pipeline.steps.get(req["step"])
    if spec is None:
        raise LookupError(f"the package's entry {req['entry']!r} no longer builds a step "
                          f"named {req['step']!r}")
    inputs = ch.in_dir / "inputs"

    def unpickle(digest: str) -> Any:  # only ever here, inside the sandbox
        with open(inputs / f"{digest}.pkl", "rb") as f:
            return pickle.load(f)  # noqa: S301 - the step's own kind of data, in its sandbox

    kwargs = {k: _codec.from_tagged(v, unpickle) for k, v in req["args"].items()}
    if spec.wants_ctx:
        c = req["ctx"]
        api = req.get("api")

        def client() -> Any:
            from modelyard.sdk.client import Client

            return Client(api["url"], api["token"], c["project"])  # type: ignore[index]

        kwargs["ctx"] = StepContext(project=c["project"], run_id=c["run_id"], step=c["step"],
                                    attempt=c["attempt"], effects=dict(c["effects"]),
                                    actor=c["actor"], _record=ch.record,
                                    _client=client if api else None)
    value = spec.fn(**kwargs)
    try:
        data, kind = _codec.encode(value).encode(), "json"
    except _codec.NotJson:
        try:
            data, kind = pickle.dumps(value), "pickle"
        except Exception as e:  # noqa: BLE001 - told to the server as the step's error
            raise TypeError(f"the step returned a {type(value).__name__}, which is neither "
                            f"JSON nor picklable: {e}") from None
    ch.send({"result": kind, "size": len(data)}, data)


def _error(e: BaseException) -> dict[str, Any]:
    from modelyard.core.errors import ModelyardError

    if isinstance(e, SystemExit):
        return {"error": f"it called sys.exit({e.code!r})", "code": "exit"}
    if isinstance(e, ModelyardError):
        return {"error": e.message, "code": e.code, "details": e.details,
                "traceback": traceback.format_exc()[-8000:]}
    return {"error": f"{type(e).__name__}: {e}"[:4000], "code": "error",
            "traceback": traceback.format_exc()[-8000:]}


def _orphaned(fd: int) -> None:
    """Ends the process once nobody reads its answer (the server died): the run is resumed
    by the next server, and this attempt must not go on beside the new one."""
    poller = select.poll()
    poller.register(fd, select.POLLERR | select.POLLHUP)  # the read end went away
    while not poller.poll():
        pass
    os._exit(1)


def main(argv: list[str]) -> None:
    mode, in_dir = argv[1], Path(argv[2])
    # The pipe to the server is a private copy of stdout; what the user's code prints goes to
    # stderr (the step's log), so it cannot garble the answer by accident.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    threading.Thread(target=_orphaned, args=(out.fileno(),), daemon=True).start()
    ch = _Channel(out, in_dir)
    try:
        req = json.loads((in_dir / "request.json").read_text())
        from modelyard.core import codepkg

        code = Path.cwd() / "code"
        codepkg.unpack((in_dir / "package.tar").read_bytes(), code)
        sys.path.insert(0, str(code))
        _load(ch, req) if mode == "load" else _step(ch, req)
    except BaseException as e:  # noqa: BLE001 - every way the user's code ends is reported
        try:
            ch.send(_error(e))
        except Exception:  # noqa: BLE001 - the pipe is gone: the exit code tells the rest
            pass
    # Threads the user's code left running do not hold the answer back.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - closed by the user's code
            pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
