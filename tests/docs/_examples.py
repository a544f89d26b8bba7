"""Runs the code blocks of a documentation page, in order, the way a reader would.

Conventions (written for authors in docs/tutorials/index.md, "How these pages are tested"):

- ```` ```bash ```` / `sh` / `shell`: run with bash (`set -euo pipefail`), with the real
  `modelyard` command on PATH. What a block exports and the directory it ends in carry over to
  the page's later blocks, as in one terminal.
- ```` ```console ````: the lines starting with `$ ` are run the same way; the rest is output
  shown to the reader and not checked.
- ```` ```python ````: run in one interpreter namespace per page (later blocks see earlier
  names), in the page's directory, with the environment the shell blocks built.
- A block with a title (```` ```python title="trainer/train.py" ````) is a file the reader
  creates: it is written to that path, relative to the page's directory, not run.
- `<!-- docs: skip: REASON -->` on the line before a block (blank lines may stand between)
  leaves it out; the reason is required. Blocks of any other language are shown, not run.

A page's blocks run in a fresh directory; the page creates its own project, so pages do not
see each other's data. A block that fails (non-zero exit, an exception, an assert) fails the
test with the page, the line and the output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

SHELL = ("bash", "sh", "shell")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
SKIP = re.compile(r"^\s*<!--\s*docs:\s*skip\b(?P<reason>.*?)-->\s*$")
TITLE = re.compile(r"""title=(?:"([^"]*)"|'([^']*)'|(\S+))""")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    title: str | None = None
    skip: str | None = None  # the reason, when the block is left out

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.skip is None and (self.title is not None or self.lang in (*SHELL, "console",
                                                                                "python"))


def parse(page: Path) -> list[Block]:
    """Every fenced block of `page`, in order, with its language, title and skip marker."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        lang = info.split()[0].lstrip("{").lstrip(".") if info else ""
        t = TITLE.search(info)
        title = next((g for g in t.groups() if g), None) if t else None
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence))
                                      and lines[j].strip().strip(fence[0]) == ""):
            body.append(lines[j])
            j += 1
        if j == len(lines):
            raise AssertionError(f"{page}:{i + 1}: the code block never closes")
        skip = _skip_reason(lines, i)
        code = textwrap.dedent("\n".join(b[len(indent):] if b.startswith(indent) else b
                                         for b in body)) + "\n"
        blocks.append(Block(page, i + 1, lang, code, title, skip))
        i = j + 1
    return blocks


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    k = fence_index - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k < 0:
        return None
    m = SKIP.match(lines[k])
    if not m:
        return None
    reason = m["reason"].strip().lstrip(":").strip()
    if not reason:
        raise AssertionError(f"{lines[k].strip()!r} before line {fence_index + 1} gives no "
                             "reason: write <!-- docs: skip: why it cannot run -->")
    return reason


def console_commands(code: str) -> str:
    """The `$ ` lines of a console block (with their `\\` continuation lines) as a script."""
    out: list[str] = []
    continuing = False
    for line in code.splitlines():
        if line.startswith("$ ") or continuing:
            text = line[2:] if line.startswith("$ ") and not continuing else line
            out.append(text)
            continuing = text.rstrip().endswith("\\")
    return "\n".join(out) + "\n"


class BlockFailed(AssertionError):
    pass


@dataclass
class PageRun:
    """One reader's session on one page: a directory, a shell environment, a namespace."""

    workdir: Path
    env: dict[str, str]
    timeout_s: float = 240
    namespace: dict[str, object] = field(default_factory=dict)
    cwd: Path | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cwd = self.workdir
        self._state = self.workdir / ".docs-shell"
        self._state.mkdir(exist_ok=True)
        self.namespace.setdefault("__name__", "__docs__")

    def run(self, blocks: list[Block]) -> int:
        """Runs every block that runs; returns how many ran."""
        ran = 0
        for b in blocks:
            if not b.runs:
                continue
            if b.title is not None:
                self._write(b)
            elif b.lang == "python":
                self._python(b)
            else:
                self._shell(b, console_commands(b.code) if b.lang == "console" else b.code)
            ran += 1
        return ran

    def _write(self, b: Block) -> None:
        assert self.cwd is not None
        target = (self.cwd / b.title).resolve()  # type: ignore[operator]
        if not target.is_relative_to(self.workdir.resolve()):
            raise BlockFailed(f"{b.where}: title {b.title!r} points outside the page's directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(b.code)

    def _shell(self, b: Block, script: str) -> None:
        env_file, cwd_file = self._state / "env.sh", self._state / "cwd"
        wrapped = "\n".join([
            "set -euo pipefail",
            f"[ -f {env_file} ] && source {env_file}",
            f"cd {self.cwd}",
            script,
            f"export -p > {env_file}",
            f"pwd > {cwd_file}",
            f"env -0 > {self._state / 'env0'}",
        ])
        try:
            got = subprocess.run(["bash", "-c", wrapped], env=self.env, capture_output=True,
                                 text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as e:
            raise BlockFailed(f"{b.where}: still running after {self.timeout_s} s:\n{b.code}"
                              f"\n--- output ---\n{_tail(e.stdout)}{_tail(e.stderr)}") from None
        if got.returncode != 0:
            raise BlockFailed(f"{b.where}: exited {got.returncode}:\n{b.code}\n--- stdout ---\n"
                              f"{_tail(got.stdout)}\n--- stderr ---\n{_tail(got.stderr)}")
        self.cwd = Path(cwd_file.read_text().strip())

    def _python(self, b: Block) -> None:
        env = dict(self.env)
        env0 = self._state / "env0"
        if env0.exists():
            env = dict(item.split("=", 1) for item in env0.read_text().split("\0") if "=" in item)
        # Overlaid on this process's environment (the server's threads share it), HOME aside.
        env.pop("HOME", None)
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        os.environ.update(env)
        assert self.cwd is not None
        os.chdir(self.cwd)
        try:
            exec(compile(b.code, b.where, "exec"), self.namespace)  # noqa: S102 - the docs' own code
        except Exception:  # noqa: BLE001 - reported with the page and line
            raise BlockFailed(f"{b.where}: raised\n{b.code}\n--- traceback ---\n"
                              f"{_tail(traceback.format_exc())}") from None
        finally:
            self.cwd = Path(os.getcwd())
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)


def _tail(text: str | bytes | None, n: int = 4000) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return text[-n:]


def reader_env(url: str, home: Path) -> dict[str, str]:
    """The environment of a reader whose server runs at `url` with data dir `home`: the CLI
    and SDK find the admin token there, as they do on a fresh install."""
    venv_bin = str(Path(sys.executable).parent)
    keep = {k: v for k, v in os.environ.items()
            if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_CORETYPE",
                     "OPENBLAS_L2_SIZE", "HF_HUB_OFFLINE", "USER", "LOGNAME")}
    return {**keep, "PATH": f"{venv_bin}{os.pathsep}{keep.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home.parent / "reader-home"), "MODELYARD_URL": url,
            "MODELYARD_HOME": str(home), "COLUMNS": "200", "HF_HUB_OFFLINE": "1",
            "NO_COLOR": "1"}
