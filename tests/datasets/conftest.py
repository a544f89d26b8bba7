"""Shared helpers of the dataset tests."""

from __future__ import annotations

import io
from typing import Any

import pytest

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


