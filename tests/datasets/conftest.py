"""Shared helpers of the dataset tests."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.sdk.client import Client


def png(value: int = 0, size: int = 8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (size, size), color=value).save(buf, format="PNG")
    return buf.getvalue()


def image_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"image": png((start + i) % 256), "label": str((start + i) % 3)} for i in range(n)]


@pytest.fixture(scope="session")
def digits_rows() -> list[dict[str, Any]]:
    from modelyard.datasets.sources import builtin

    return builtin("sklearn:digits")[2]


@pytest.fixture
def images(client: Client) -> Client:
    """Project alpha with an empty image dataset `imgs`."""
    client.datasets.create("imgs", "image_classification")
    return client


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def err_text(self) -> str:
        return " ".join(self.stderr.split())  # rich wraps long lines


def run(args: list[str], env: dict[str, str | None]) -> Outcome:
    """Runs `modelyard ARGS` through its real entry point."""
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
