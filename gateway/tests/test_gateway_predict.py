"""The gateway (served on its event loop, real sockets) against the numpy gRPC PredictionService and a real image
HTTP server: every input form, labels, softmax, top-k, both output encodings, uint8 models,
re-exported tensor names, metrics and readiness."""

import base64
import io
import ipaddress

import numpy as np
import pytest
import requests
from gateway_testing import serve_gateway
from numpy_model_server import CLOTHING, FakeModel, NumpyModelServer
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import Settings

pytestmark = pytest.mark.integration


def expected_scores(jpeg: bytes, model: FakeModel) -> np.ndarray:
    """What the numpy model must answer for `jpeg`, computed independently of the gateway:
    Keras-style NEAREST resize of the decoded photo, Xception scaling, then the model's matrix."""
    rgb = np.asarray(
        Image.open(io.BytesIO(jpeg)).convert("RGB").resize((model.size, model.size), Image.NEAREST)
    )
    x = rgb.astype(np.float32) / 127.5 - 1.0
    return model.scores(x[np.newaxis])[0]


@pytest.fixture(scope="module")
def model_server():
    with NumpyModelServer(FakeModel()) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(model_server, image_server):
    settings = Settings(
        tf_serving_host=model_server.target,
        fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
        fetch_allowed_ports=frozenset({image_server.port}),
        metadata_refresh_seconds=3600,
    )
    with serve_gateway(settings) as base:
        yield base


def test_url_input_returns_the_seed_shape(gateway, image_server, model_server, sample_jpeg):
    response = requests.post(gateway + "/predict", json={"url": image_server.url("/img/hat.jpg")}, timeout=10)
    assert response.status_code == 200, response.text
    scores = response.json()
    assert list(scores) == [f"class_{i}" for i in range(10)]  # no LABELS, no labels output
    np.testing.assert_allclose(
        list(scores.values()), expected_scores(sample_jpeg, model_server.model), rtol=1e-4, atol=1e-5
    )
    assert response.headers["X-Request-ID"]
    # The version that answered (the PredictResponse's model_spec), for rollouts to observe.
    assert response.headers["X-Model-Version"] == str(model_server.model.version)


def test_request_carries_the_discovered_names_as_tensor_content(gateway, model_server, sample_jpeg):
    requests.post(gateway + "/predict", json={"image": base64.b64encode(sample_jpeg).decode()}, timeout=10)
    sent = model_server.service.last_request
    assert list(sent.inputs) == ["input_8"]
    tensor = sent.inputs["input_8"]
    assert [d.size for d in tensor.tensor_shape.dim] == [1, 299, 299, 3]
    assert len(tensor.tensor_content) == 299 * 299 * 3 * 4 and not tensor.float_val
    assert list(sent.output_filter) == ["dense_7"]


def test_base64_multipart_and_raw_bodies_agree(gateway, sample_jpeg):
    by_b64 = requests.post(
        gateway + "/predict", json={"image": base64.b64encode(sample_jpeg).decode()}, timeout=10
    )
    data_uri = "data:image/jpeg;base64," + base64.b64encode(sample_jpeg).decode()
    by_uri = requests.post(gateway + "/predict", json={"image": data_uri}, timeout=10)
    by_upload = requests.post(
        gateway + "/predict", files={"file": ("hat.jpg", sample_jpeg, "image/jpeg")}, timeout=10
    )
    by_raw = requests.post(
        gateway + "/predict", data=sample_jpeg, headers={"Content-Type": "image/jpeg"}, timeout=10
    )
    for response in (by_b64, by_uri, by_upload, by_raw):
        assert response.status_code == 200, response.text
        assert response.json() == by_b64.json()


def test_png_from_url(gateway, image_server):
    response = requests.post(
        gateway + "/predict", json={"url": image_server.url("/img/shoes.png")}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert len(response.json()) == 10


def test_top_k_orders_best_first(gateway, sample_jpeg, model_server):
    body = {"image": base64.b64encode(sample_jpeg).decode(), "top_k": 3}
    scores = requests.post(gateway + "/predict", json=body, timeout=10).json()
    expected = expected_scores(sample_jpeg, model_server.model)
    assert list(scores) == [f"class_{i}" for i in np.argsort(-expected)[:3]]
    upload = requests.post(
        gateway + "/predict", files={"file": ("a.jpg", sample_jpeg)}, data={"top_k": "3"}, timeout=10
    )
    assert upload.json() == scores


def test_labels_from_configuration_and_softmax(model_server, sample_jpeg):
    settings = Settings(tf_serving_host=model_server.target, labels=CLOTHING, apply_softmax=True)
    with serve_gateway(settings, start_refresh=False) as base:
        scores = requests.post(
            base + "/predict", json={"image": base64.b64encode(sample_jpeg).decode()}, timeout=10
        ).json()
    assert list(scores) == list(CLOTHING)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    logits = expected_scores(sample_jpeg, model_server.model)
    assert max(scores, key=scores.get) == CLOTHING[int(np.argmax(logits))]


def test_label_count_mismatch_is_a_clear_error(model_server, sample_jpeg):
    settings = Settings(tf_serving_host=model_server.target, labels=("a", "b"))
    with serve_gateway(settings, start_refresh=False) as base:
        response = requests.post(
            base + "/predict", json={"image": base64.b64encode(sample_jpeg).decode()}, timeout=10
        )
    assert response.status_code == 500 and response.json()["error"]["code"] == "labels_mismatch"


def test_labels_output_of_the_model_and_float_val_and_uint8(sample_jpeg):
    model = FakeModel(
        input_name="image_bytes",
        input_dtype="uint8",
        size=256,
        scores_output="scores",
        labels_output="labels",
        scores_as_float_val=True,
    )
    with (
        NumpyModelServer(model) as server,
        serve_gateway(Settings(tf_serving_host=server.target), start_refresh=False) as base,
    ):
        scores = requests.post(
            base + "/predict", json={"image": base64.b64encode(sample_jpeg).decode()}, timeout=10
        ).json()
        sent = server.service.last_request
    assert list(scores) == list(CLOTHING)
    assert sent.inputs["image_bytes"].dtype == 4  # DT_UINT8: raw pixels, the graph scales
    rgb = np.asarray(
        Image.open(io.BytesIO(sample_jpeg)).convert("RGB").resize((256, 256), Image.NEAREST)
    )  # 400x534: no DCT reduction at 256
    np.testing.assert_allclose(list(scores.values()), model.scores(rgb[np.newaxis])[0], rtol=1e-5)


def test_reexported_model_with_new_names_needs_no_configuration(sample_jpeg):
    model = FakeModel()
    image = {"image": base64.b64encode(sample_jpeg).decode()}
    with (
        NumpyModelServer(model) as server,
        serve_gateway(Settings(tf_serving_host=server.target), start_refresh=False) as base,
    ):
        assert requests.post(base + "/predict", json=image, timeout=10).status_code == 200
        # Re-export: Keras 3 `model.export()` names, a different size, version 2.
        model.input_name, model.scores_output, model.size, model.version = "inputs", "output_0", 224, 2
        response = requests.post(base + "/predict", json=image, timeout=10)
        assert response.status_code == 200, response.text
        assert list(server.service.last_request.inputs) == ["inputs"]
        assert requests.get(base + "/readyz", timeout=10).json()["model_version"] == 2


def test_metrics_expose_requests_stages_in_flight_and_bytes(gateway, image_server):
    requests.post(gateway + "/predict", json={"url": image_server.url("/img/dress.jpg")}, timeout=10)
    requests.post(gateway + "/predict", json={"image": "%%%"}, timeout=10)
    text = requests.get(gateway + "/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests_total = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["gateway_requests"].samples
        if s.name == "gateway_requests_total"
    }
    assert requests_total[("/predict", "200")] >= 1 and requests_total[("/predict", "400")] >= 1
    stage_counts = {
        s.labels["stage"]: s.value
        for s in families["gateway_stage_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert stage_counts["fetch"] >= 1 and stage_counts["decode"] >= 1 and stage_counts["model"] >= 1
    assert families["gateway_request_duration_seconds"].type == "histogram"
    assert families["gateway_requests_in_flight"].type == "gauge"
    fetched = [
        s.value for s in families["gateway_fetched_bytes"].samples if s.name == "gateway_fetched_bytes_total"
    ]
    assert fetched[0] >= len(image_server.httpd.files["dress.jpg"])
    errors = {
        s.labels["code"]: s.value
        for s in families["gateway_errors"].samples
        if s.name == "gateway_errors_total"
    }
    assert errors["invalid_base64"] >= 1


def test_request_metrics_keep_a_bounded_label_set_for_made_up_methods(gateway):
    """Any token is a valid HTTP method; counting each as its own series would let a client
    grow the metrics (and the gateway's memory) without bound."""
    from aiohttp import http_parser

    # aiohttp's C parser (llhttp, what the gateway runs with) knows the registered methods only:
    # made-up ones are a 400 before the app sees them, a real (WebDAV) one reaches the app: 405.
    assert http_parser.HttpRequestParser is http_parser.HttpRequestParserC
    for method, status, code in (
        ("BREW", 400, "bad_request"),
        ("PROPFIND", 405, "method_not_allowed"),
        ("X-Y-Z", 400, "bad_request"),
    ):
        response = requests.request(method, gateway + "/predict", timeout=10)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    text = requests.get(gateway + "/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    methods = {s.labels["method"] for s in families["gateway_requests"].samples}
    assert "other" in methods and not methods & {"BREW", "PROPFIND", "X-Y-Z"}, methods


def test_readyz_reports_the_model_and_is_cached(gateway, model_server):
    first = requests.get(gateway + "/readyz", timeout=10)
    assert first.status_code == 200 and first.json()["input"] == "input_8"
    calls = model_server.service.metadata_calls
    for _ in range(5):
        requests.get(gateway + "/readyz", timeout=10)
    assert model_server.service.metadata_calls - calls <= 1


def test_predictions_past_max_in_flight_wait_their_turn_and_probes_do_not(sample_jpeg):
    """MAX_IN_FLIGHT=1 before a model that takes 0.5 s: three predictions sent together are
    answered one after the other (without the limit, all three take ~0.7 s here), while
    /healthz answers at once."""
    import concurrent.futures
    import time

    body = {"image": base64.b64encode(sample_jpeg).decode()}
    with (
        NumpyModelServer(FakeModel(delay_seconds=0.5)) as server,
        serve_gateway(Settings(tf_serving_host=server.target, max_in_flight=1), start_refresh=False) as base,
    ):
        requests.post(base + "/predict", json=body, timeout=10).raise_for_status()  # discovery
        started = time.monotonic()

        def predict():
            response = requests.post(base + "/predict", json=body, timeout=10)
            return time.monotonic() - started, response.status_code

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = [pool.submit(predict) for _ in range(3)]
            time.sleep(0.1)
            probe = requests.get(base + "/healthz", timeout=10)
            probed_after = time.monotonic() - started
            finished = sorted(f.result() for f in answers)
    assert probe.status_code == 200 and probed_after < 0.4, probed_after
    assert [status for _, status in finished] == [200, 200, 200]
    assert finished[-1][0] >= 1.45, finished  # three turns of 0.5 s


def test_a_client_that_stalls_mid_body_does_not_hold_a_prediction_slot(model_server, sample_jpeg):
    """MAX_IN_FLIGHT=1 and a client that sent half its body: other predictions go on."""
    import socket

    settings = Settings(tf_serving_host=model_server.target, max_in_flight=1)
    with serve_gateway(settings, start_refresh=False) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                b"Content-Length: 100000\r\n\r\n" + sample_jpeg[:1000]
            )
            for _ in range(3):
                response = requests.post(
                    base + "/predict", json={"image": base64.b64encode(sample_jpeg).decode()}, timeout=5
                )
                assert response.status_code == 200, response.text
