"""The one transform shared by training and serving."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from modelyard import preprocessing
from modelyard.core.errors import InvalidArgument

IMAGE = {"kind": "image", "height": 8, "width": 8, "scale": 1 / 255,
         "labels": [str(i) for i in range(10)]}


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def test_png_bytes_base64_and_pixel_lists_give_the_same_tensor() -> None:
    pixels = (np.arange(64).reshape(8, 8) * 3).astype(np.uint8)
    pre = preprocessing.build(IMAGE)
    png = _png(pixels)
    out = pre.transform([png, base64.b64encode(png).decode(), pixels.tolist()])
    assert out.shape == (3, 1, 8, 8) and out.dtype == np.float32
    assert np.allclose(out[0], out[1]) and np.allclose(out[0], out[2])
    assert np.isclose(out[0, 0, 7, 7], 63 * 3 / 255)


def test_images_of_another_size_are_resized() -> None:
    pre = preprocessing.build(IMAGE)
    assert pre.transform([_png(np.full((16, 16), 255))]).shape == (1, 1, 8, 8)


@pytest.mark.parametrize("bad", ["not base64 !!", b"not a png", [[1, 2], [3, 4]],
                                 np.full((8, 8), 300).tolist()])
def test_bad_image_inputs_are_invalid_arguments(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="input 0"):
        preprocessing.build(IMAGE).transform([bad])


def test_decode_gives_the_best_label_and_its_probability() -> None:
    pre = preprocessing.build(IMAGE)
    logits = np.zeros((2, 10), dtype=np.float32)
    logits[0, 3] = 10.0
    logits[1, 7] = 1.0
    out = pre.decode(logits)
    assert out[0]["label"] == "3" and out[0]["confidence"] > 0.99
    assert out[1]["label"] == "7" and 0.1 < out[1]["confidence"] < 0.5


def test_top_class_is_the_softmax_argmax_and_its_probability() -> None:
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(33, 21)) * 8).astype(np.float32)
    logits[5] = 700.0  # exp would overflow without the shift by the row's maximum
    logits[5, 2] = 701.0
    best, confidence = preprocessing.top_class(logits)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert best == p.argmax(axis=1).tolist()
    assert confidence == pytest.approx(p.max(axis=1).tolist(), rel=1e-12)
    assert preprocessing.top_class(logits[0]) == ([best[0]], [confidence[0]])  # one row


def test_text_transform_is_word_frequencies_over_the_vocabulary() -> None:
    vocab = preprocessing.build_vocab(["hello there", "hello world", "bye"], max_vocab=10)
    assert vocab["<unk>"] == 0 and vocab["hello"] == 1
    pre = preprocessing.build({"kind": "text", "vocab": vocab, "max_len": 3,
                               "labels": ["greet", "bye"]})
    out = pre.transform(["Hello, HELLO unknown-word and more", ""])
    assert out.shape == (2, len(vocab))
    assert np.isclose(out[0, vocab["hello"]], 2 / 3)  # only the first max_len words count
    assert np.isclose(out[0, 0], 1 / 3)
    assert np.isclose(out[0].sum(), 1.0) and np.isclose(out[1, 0], 1.0)
    with pytest.raises(InvalidArgument):
        pre.transform([42])


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="kind"):
        preprocessing.build({"kind": "audio"})
