"""The baseline must be the lesson's pipeline, or the comparison means nothing: same
preprocessing output as keras-image-helper, same request (tensor names, dtype, shape), served
end to end through `from_url` and one gRPC channel to a real (instant) model server."""

from __future__ import annotations

import http.server
import importlib
import pathlib
import threading

import grpc
import numpy as np
import pytest
from keras_image_helper import create_preprocessor
from PIL import Image
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from bench import backend as instant
from bench.images import DATASET_IMAGE

pytestmark = pytest.mark.integration  # real gRPC server process, real HTTP server on loopback


def xception_nearest(path: pathlib.Path) -> np.ndarray:
    """The lesson's preprocessing written out independently: RGB, NEAREST to 299x299, x/127.5-1."""
    with Image.open(path) as image:
        small = image.convert("RGB").resize((299, 299), Image.NEAREST)
    return (np.asarray(small, dtype=np.float32) / 127.5 - 1.0)[np.newaxis]


@pytest.fixture()
def model_server(instant_backends):
    return instant_backends["float32"]


@pytest.fixture(scope="module")
def image_url():
    directory = DATASET_IMAGE.parent

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{DATASET_IMAGE.name}"
    server.shutdown()


@pytest.fixture()
def lesson(model_server, monkeypatch):
    # The lesson reads TF_SERVING_HOST and opens its one channel at import time: re-import it.
    monkeypatch.setenv("TF_SERVING_HOST", model_server.address)
    import bench.baseline.gateway

    module = importlib.reload(bench.baseline.gateway)
    yield module
    module.channel.close()


def test_baseline_uses_keras_image_helper_xception_299(lesson):
    expected = create_preprocessor("xception", target_size=(299, 299)).from_path(str(DATASET_IMAGE))
    ours = lesson.preprocessor.from_path(str(DATASET_IMAGE))
    assert ours.dtype == np.float32 and ours.shape == (1, 299, 299, 3)
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_allclose(ours, xception_nearest(DATASET_IMAGE), atol=1e-6)


def test_request_carries_the_lesson_tensor_as_float32_tensor_content(lesson, image_url):
    request = lesson.prepare_request(lesson.preprocessor.from_url(image_url))
    assert request.model_spec.name == "clothing-model"
    assert request.model_spec.signature_name == "serving_default"
    assert list(request.inputs) == ["input_8"] == [instant.INPUT_NAME]
    tensor = request.inputs["input_8"]
    assert tensor.dtype == types_pb2.DT_FLOAT
    assert [d.size for d in tensor.tensor_shape.dim] == [1, 299, 299, 3]
    assert not tensor.float_val  # values travel as raw bytes, not repeated fields
    pixels = np.frombuffer(tensor.tensor_content, dtype="<f4").reshape(1, 299, 299, 3)
    np.testing.assert_allclose(pixels, xception_nearest(DATASET_IMAGE), atol=1e-6)


def test_flask_endpoint_predicts_through_the_instant_model_server(lesson, image_url, model_server):
    model_server.reset()
    response = lesson.app.test_client().post("/predict", json={"url": image_url})
    assert response.status_code == 200
    scores = response.get_json()
    assert list(scores) == lesson.classes and len(scores) == instant.NUM_CLASSES
    assert scores["t-shirt"] == pytest.approx(instant.SCORES[-1])
    counts = model_server.counts()
    assert counts["predicts"] == 1
    assert counts["payload_bytes"] == 299 * 299 * 3 * 4


def test_output_name_matches_what_the_model_server_answers(lesson, model_server):
    channel = grpc.insecure_channel(model_server.address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(lesson.prepare_request(xception_nearest(DATASET_IMAGE)), timeout=10)
    channel.close()
    assert lesson.OUTPUT_NAME in response.outputs
    assert lesson.prepare_response(response) == dict(zip(lesson.classes, instant.SCORES))
