"""`python -m modelyard.runtime.worker`: the process a job runs (once per worker).

Runs `MODELYARD_ENTRYPOINT`: `module:function` (built-in trainers, or a module of an uploaded
code package) or `path/to/script.py` inside the code package, which is fetched by digest and
unpacked first.
"""

from __future__ import annotations

import importlib
import io
import os
import runpy
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# httpx imports its command-line tool (click and rich, ~35 ms of a job's start) whenever those
# are installed; a job never runs it, so httpx falls back to its stub.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _unpack(data: bytes, dest: Path) -> None:
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                if member.startswith("/") or ".." in Path(member).parts:
                    raise SystemExit(f"code package member {member!r} escapes the package")
            z.extractall(dest)
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
        t.extractall(dest, filter="data")


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


if __name__ == "__main__":
    sys.exit(main())
