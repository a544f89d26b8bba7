"""Run `modelyard ARGS` in-process through its real entry point, capturing output and exit code."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from typer.testing import CliRunner


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def err_text(self) -> str:
        return " ".join(self.stderr.split())  # rich wraps long lines


def run(args: list[str], env: dict[str, str | None]) -> Outcome:
    """Runs `modelyard ARGS` through its real entry point, `modelyard.cli.main:main`."""
    from modelyard.cli.main import main

    argv = sys.argv
    with CliRunner().isolation(env={"COLUMNS": "200", **env}) as (out, err, *_):
        sys.argv = ["modelyard", *args]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv = argv
        return Outcome(code, out.getvalue().decode(), err.getvalue().decode())
