"""The real `tritonclient[http]` against a live modelyard server (Open Inference Protocol)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.serving._digits import digits, expected_labels
from tests.serving.conftest import DigitsModel

httpclient = pytest.importorskip("tritonclient.http")
triton_utils = pytest.importorskip("tritonclient.utils")


@pytest.mark.integration
def test_tritonclient_gets_metadata_and_correct_predictions(
        settings: Settings, api: TestClient, client: Client, admin_token: str,
        digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production")
    auth = {"Authorization": f"Bearer {admin_token}", "X-Modelyard-Project": "alpha"}

    def headers() -> dict[str, str]:
        return dict(auth)  # tritonclient writes its binary header length into the dict given
    pixels = digits().test_x[:40]
    x = (pixels / 255).astype(np.float32).reshape(40, 1, 8, 8)
    want = expected_labels(digits_model.c1, pixels)
    with live_server(settings) as live:
        triton = httpclient.InferenceServerClient(url=f"127.0.0.1:{live.port}")
        try:
            assert triton.is_server_live()
            assert triton.is_server_ready()
            assert triton.is_model_ready("digits", headers=headers())
            meta = triton.get_model_metadata("digits", headers=headers())
            assert meta["inputs"] == [{"name": "input", "datatype": "FP32",
                                       "shape": [-1, 1, 8, 8]}]
            assert meta["outputs"][0]["name"] == "logits"
            for binary in (True, False):  # the binary tensor extension, then plain JSON
                inp = httpclient.InferInput("input", list(x.shape), "FP32")
                inp.set_data_from_numpy(x, binary_data=binary)
                out = httpclient.InferRequestedOutput("logits", binary_data=binary)
                res = triton.infer("digits", [inp], outputs=[out], headers=headers())
                logits = res.as_numpy("logits")
                assert logits.shape == (40, 10)
                assert [str(i) for i in logits.argmax(axis=1)] == want
            # no outputs named: tritonclient asks for every output in binary
            inp = httpclient.InferInput("input", [2, 1, 8, 8], "FP32")
            inp.set_data_from_numpy(x[:2])
            res = triton.infer("digits", [inp], model_version="2", headers=headers())
            assert res.get_response()["model_version"] == "2"
            assert res.as_numpy("logits").shape == (2, 10)
            # a wrong shape is refused with the reason
            bad = httpclient.InferInput("input", [2, 64], "FP32")
            bad.set_data_from_numpy(x[:2].reshape(2, 64))
            with pytest.raises(triton_utils.InferenceServerException, match="shape"):
                triton.infer("digits", [bad], headers=headers())
        finally:
            triton.close()


@pytest.mark.integration
def test_tritonclient_reads_every_error_under_v2_including_routes_modelyard_lacks(
        settings: Settings, api: TestClient, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}", "X-Modelyard-Project": "alpha"}
    with live_server(settings) as live:
        triton = httpclient.InferenceServerClient(url=f"127.0.0.1:{live.port}")
        try:
            # Triton's own extensions: not served here, and said so in a message it can show
            for call, args in ((triton.get_model_repository_index, ()),
                               (triton.get_model_config, ("digits",)),
                               (triton.get_inference_statistics, ("digits",)),
                               (triton.load_model, ("digits",))):
                with pytest.raises(triton_utils.InferenceServerException) as caught:
                    call(*args, headers=dict(headers))
                assert caught.value.status() == "404"
                assert "/v2/" in caught.value.message(), caught.value.message()
            with pytest.raises(triton_utils.InferenceServerException) as caught:
                triton.get_model_metadata("nosuch", headers=dict(headers))
            assert caught.value.status() == "404" and isinstance(caught.value.message(), str)
        finally:
            triton.close()
    # a wrong method and an oversized body, refused before any route, in the same shape
    wrong = api.delete("/v2/models/digits/infer", headers=headers)
    assert wrong.status_code == 405 and isinstance(wrong.json()["error"], str)
    big = api.post("/v2/models/digits/infer", headers={**headers, "Content-Length": str(2**40)},
                   content=b"{}")
    assert big.status_code == 413 and isinstance(big.json()["error"], str)
