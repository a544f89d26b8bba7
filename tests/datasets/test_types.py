"""Strict validation of each dataset type."""

from __future__ import annotations

import struct
import zlib

import pytest

from modelyard.core.errors import InvalidArgument
from modelyard.datasets._png import png_size
from modelyard.datasets.types import TYPES, get_type
from tests.datasets.conftest import png


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_structure_is_checked() -> None:
    good = png(7, size=5)
    assert png_size(good) == (5, 5)
    with pytest.raises(ValueError, match="IEND|truncated"):
        png_size(good[:-20])
    flipped = bytearray(good)
    flipped[40] ^= 0xFF
    with pytest.raises(ValueError):
        png_size(bytes(flipped))
    huge = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 1, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + _chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="outside"):
        png_size(huge)
    bomb = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 1_000_000)) + _chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="larger"):
        png_size(bomb)


def test_every_type_rejects_unknown_and_missing_fields() -> None:
    configs = {"tabular": {"columns": {"x": "float", "y": "string"}, "target": "y"}}
    for name in TYPES:
        kind = get_type(name, configs.get(name))
        with pytest.raises(InvalidArgument) as e:
            kind.validate([{"nonsense": 1}], offset=10)
        assert e.value.details["rows"] == [10]
        assert "nonsense" in e.value.details["fields"]


def test_text_intent_accepts_single_label_and_rejects_empty_labels() -> None:
    kind = get_type("text_intent")
    table = kind.validate([{"text": "hi", "label": "greet"}, {"text": "yo", "labels": ["a", "b"]}])
    assert table.column("labels").to_pylist() == [["greet"], ["a", "b"]]
    with pytest.raises(InvalidArgument) as e:
        kind.validate([{"text": "hi", "labels": []}])
    assert e.value.details["fields"] == ["labels"]
