"""One input transform for training and serving (numpy + Pillow; no torch).

`build(spec)` turns a model version's `preprocessing` JSON into a `Preprocessor`:

- `{"kind": "image", "height", "width", "scale", "labels"}`: raw inputs are PNG bytes, base64
  PNG strings, or nested lists of pixel values 0..255 (H×W); output float32 (N, 1, H, W).
- `{"kind": "text", "vocab", "max_len", "labels"}`: raw inputs are strings, split into lowercase
  words; output float32 (N, len(vocab)) of word frequencies over the first `max_len` words
  (index 0 is reserved for unknown words), which a linear layer turns into a mean of embeddings.
- `{"kind": "tabular", "features", "task", "labels"}`: raw inputs are objects of named
  features or rows of values (see `_preprocessing_tabular.py`); output float32 (N, features).

`decode(logits)` gives `[{"label", "confidence"}]` per row (softmax, best class).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from modelyard.core.errors import InvalidArgument

MAX_IMAGE_SIDE = 4096  # pixels a side of an image: a model's input, a dataset's row

_WORD = re.compile(r"[a-z0-9']+")
UNKNOWN = "<unk>"


class Preprocessor(Protocol):
    labels: list[str]

    def transform(self, raw_inputs: Sequence[Any]) -> np.ndarray: ...

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]: ...


def build(spec: dict[str, Any]) -> Preprocessor:
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "image":
        return ImagePreprocessor(int(spec["height"]), int(spec["width"]),
                                 float(spec.get("scale", 1 / 255)), list(spec.get("labels", [])))
    if kind == "text":
        return TextPreprocessor(dict(spec["vocab"]), int(spec["max_len"]),
                                list(spec.get("labels", [])))
    if kind == "tabular":
        from modelyard import _preprocessing_tabular

        return _preprocessing_tabular.build(spec)
    raise InvalidArgument(f"unknown preprocessing kind {kind!r}: use 'image', 'text' or 'tabular'",
                          {"field": "preprocessing.kind"})


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], max_vocab: int) -> dict[str, int]:
    """The `max_vocab - 1` most frequent words (ties by word), after the unknown-word slot 0."""
    counts = Counter(w for t in texts for w in tokenize(t))
    words = sorted(counts, key=lambda w: (-counts[w], w))[: max_vocab - 1]
    return {UNKNOWN: 0, **{w: i + 1 for i, w in enumerate(words)}}

def top_class(logits: np.ndarray) -> tuple[list[int], list[float]]:
    """Each row's most likely class and its softmax probability.

    The top class's probability is 1 / sum(exp(z - max z)), the very value a whole softmax
    gives it, without dividing every entry: on the few rows of a batch each numpy call costs
    more than its arithmetic."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        z = z[None, :]
    best = z.argmax(axis=1).tolist()
    sums = np.add.reduce(np.exp(z - np.maximum.reduce(z, axis=1)[:, None]), axis=1).tolist()
    return best, [1.0 / s for s in sums]


class _Decoder:
    labels: list[str]

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        labels = self.labels
        best, confidence = top_class(logits)
        return [{"label": labels[i] if i < len(labels) else str(i), "confidence": c}
                for i, c in zip(best, confidence, strict=True)]


class ImagePreprocessor(_Decoder):
    def __init__(self, height: int, width: int, scale: float, labels: list[str]) -> None:
        self.height, self.width, self.scale, self.labels = height, width, scale, labels

    def spec(self) -> dict[str, Any]:
        return {"kind": "image", "height": self.height, "width": self.width,
                "scale": self.scale, "labels": self.labels}

    def transform(self, raw_inputs: Sequence[Any]) -> np.ndarray:
        out = np.empty((len(raw_inputs), 1, self.height, self.width), dtype=np.float32)
        for i, raw in enumerate(raw_inputs):
            out[i, 0] = self._pixels(raw, i)
        return out * np.float32(self.scale)

    def _pixels(self, raw: Any, i: int) -> np.ndarray:
        if isinstance(raw, str):
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidArgument(f"input {i}: a string must be a base64 PNG",
                                      {"index": i}) from None
        if isinstance(raw, (bytes, bytearray, memoryview)):
            from PIL import Image, UnidentifiedImageError

            try:
                opened = Image.open(io.BytesIO(bytes(raw)))  # reads the header, decodes nothing
                w, h = opened.size
                if not (0 < w <= MAX_IMAGE_SIDE and 0 < h <= MAX_IMAGE_SIDE):
                    # a few kB of PNG can claim gigapixels: refused before it is decoded
                    raise InvalidArgument(
                        f"input {i}: the image is {w}x{h}; send at most {MAX_IMAGE_SIDE} pixels "
                        f"a side (the model takes {self.width}x{self.height})", {"index": i})
                img = opened.convert("L")
            except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
                raise InvalidArgument(f"input {i}: not a readable image", {"index": i}) from None
            if img.size != (self.width, self.height):
                img = img.resize((self.width, self.height), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.float32)
        try:
            arr = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidArgument(f"input {i}: expected PNG bytes, base64 PNG or a "
                                  f"{self.height}x{self.width} list of pixels", {"index": i}) from None
        if arr.shape == (1, self.height, self.width):
            arr = arr[0]
        if arr.shape != (self.height, self.width):
            raise InvalidArgument(f"input {i}: pixel array has shape {list(arr.shape)}, expected "
                                  f"[{self.height}, {self.width}]", {"index": i})
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
            raise InvalidArgument(f"input {i}: pixel values must be within 0..255", {"index": i})
        return arr


class TextPreprocessor(_Decoder):
    def __init__(self, vocab: dict[str, int], max_len: int, labels: list[str]) -> None:
        self.vocab, self.max_len, self.labels = vocab, max_len, labels
        self.size = max(vocab.values(), default=0) + 1

    def spec(self) -> dict[str, Any]:
        return {"kind": "text", "vocab": self.vocab, "max_len": self.max_len,
                "labels": self.labels}

    def transform(self, raw_inputs: Sequence[Any]) -> np.ndarray:
        out = np.zeros((len(raw_inputs), self.size), dtype=np.float32)
        for i, raw in enumerate(raw_inputs):
            if not isinstance(raw, str):
                raise InvalidArgument(f"input {i}: text input must be a string", {"index": i})
            words = tokenize(raw)[: self.max_len] or [UNKNOWN]
            for w in words:
                out[i, self.vocab.get(w, 0)] += 1.0
            out[i] /= len(words)
        return out
