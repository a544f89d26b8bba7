"""`python -m modelyard.runtime.worker`: the process a job runs (once per worker).

Runs `MODELYARD_ENTRYPOINT`: `module:function` (built-in trainers, or a module of an uploaded
code package) or `path/to/script.py` inside the code package, which is fetched by digest and
unpacked first.

A built-in trainer's process ends without the interpreter's teardown: with torch, its
exporter and Lance loaded that takes 2-4 s of CPU (during which a DDP rank that finished first
slows down rank 0's model export), and a built-in trainer leaves nothing that needs it
(metrics are flushed by `atexit`, which still runs). User code gets the ordinary exit.
"""

from __future__ import annotations

import atexit
import importlib
import os
import runpy
import sys
import tempfile
from pathlib import Path

# httpx imports its command-line tool (click and rich, ~35 ms of a job's start) whenever those
# are installed; a job never runs it, so httpx falls back to its stub.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _unpack(data: bytes, dest: Path) -> None:
    # The package was validated at upload; it is validated again here, in the job's sandbox,
    # because these bytes came over the network. Imported only for code packages: a built-in
    # trainer's start does not pay for it.
    from modelyard.core.codepkg import PackageLimits, unpack
    from modelyard.core.errors import ModelyardError

    limits = PackageLimits.decode(os.environ.get("MODELYARD_PACKAGE_LIMITS", ""))
    try:
        unpack(data, dest, limits=limits)
    except ModelyardError as e:
        raise SystemExit(f"modelyard worker: the code package is refused: {e}") from None


def main() -> int:
    entry = os.environ.get("MODELYARD_ENTRYPOINT", "")
    if not entry:
        print("modelyard worker: MODELYARD_ENTRYPOINT is not set", file=sys.stderr)
        return 2
    digest = os.environ.get("MODELYARD_CODE_DIGEST")
    if digest:
        from modelyard.runtime._context import client, with_retry

        data = with_retry(lambda: client().training.download_code(digest), "download the code")
        dest = Path(tempfile.mkdtemp(prefix="modelyard-code-"))
        _unpack(data, dest)
        sys.path.insert(0, str(dest))
        os.chdir(dest)
        if entry.endswith(".py"):
            runpy.run_path(str(dest / entry), run_name="__main__")
            return 0
    module, _, func = entry.partition(":")
    result = getattr(importlib.import_module(module), func or "main")()
    return int(result or 0)


BUILTIN_PREFIX = "modelyard.training.builtin."


def exit_now(code: int) -> None:
    """Ends the process at once with `code`, after the `atexit` hooks and a flush of stdio."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    code = main()
    if os.environ.get("MODELYARD_ENTRYPOINT", "").startswith(BUILTIN_PREFIX):
        exit_now(code)
    sys.exit(code)
