"""The gateway as a real process against `model serve` processes serving a real SavedModel built
by Keras in the test: labels carried by the model, a re-export with Keras 3's default tensor
names (acceptance 2), and client-side balancing over two servers (acceptance 3)."""

import base64
import io
import shutil
import time

import numpy as np
import pytest
import requests
from gateway_testing import gateway_process
from model_serve_subprocess import TINY_LABELS, TINY_SIZE, ModelServe, build_tiny_keras_model
from PIL import Image
from tiny_dns_server import TinyDNSServer

from support.net import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keras_model():
    return build_tiny_keras_model()


@pytest.fixture(scope="module")
def model_base(tmp_path_factory, keras_model):
    """<base>/tiny/1: `model convert` of the tiny model, labels added as a model output."""
    from model_tools.convert import convert

    folder = tmp_path_factory.mktemp("gw-models")
    keras_model.save(folder / "tiny.keras")
    convert(folder / "tiny.keras", folder / "models", "tiny", 1, labels=TINY_LABELS)
    monitoring = folder / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    return {"base": folder / "models" / "tiny", "monitoring": monitoring, "root": folder}


@pytest.fixture(scope="module")
def server_pair(model_base):
    """Two model servers on the same port of two loopback addresses (for ipv4: and dns: targets)."""
    port = free_port()
    servers = [
        ModelServe(
            model_base["base"], "tiny", port, free_port(), host=host, monitoring=model_base["monitoring"]
        )
        for host in ("127.0.0.1", "127.0.0.2")
    ]
    try:
        yield [s.wait_ready() for s in servers]
    finally:
        for s in servers:
            s.stop()


def png_b64(size=(48, 40)) -> tuple[str, np.ndarray]:
    pixels = (np.arange(size[0] * size[1] * 3).reshape(size[1], size[0], 3) * 7 % 256).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode(), pixels


def keras_logits(keras_model, pixels: np.ndarray) -> np.ndarray:
    """The oracle: Keras on the training-style input (NEAREST resize, Xception scaling)."""
    resized = np.asarray(Image.fromarray(pixels).resize((TINY_SIZE, TINY_SIZE), Image.NEAREST))
    x = resized.astype("float32")[None] / 127.5 - 1.0
    return np.asarray(keras_model(x, training=False))[0]


def test_prediction_matches_keras_and_uses_the_models_labels(server_pair, keras_model):
    image, pixels = png_b64()
    env = {"TF_SERVING_HOST": server_pair[0].target, "MODEL_NAME": "tiny"}
    with gateway_process(env) as (base, _):
        response = requests.post(base + "/predict", json={"image": image}, timeout=30)
        assert response.status_code == 200, response.text
        scores = response.json()
        assert list(scores) == TINY_LABELS
        np.testing.assert_allclose(
            list(scores.values()), keras_logits(keras_model, pixels), rtol=1e-4, atol=1e-4
        )
        ready = requests.get(base + "/readyz", timeout=10).json()
        assert ready["model_version"] == 1 and ready["input"] == "pixels"


def test_two_servers_behind_one_ipv4_target_both_get_requests(server_pair):
    image, _ = png_b64()
    target = ",".join(f"127.0.0.{i}:{s.grpc_port}" for i, s in ((1, server_pair[0]), (2, server_pair[1])))
    before = [s.request_count() for s in server_pair]
    with gateway_process({"TF_SERVING_HOST": f"ipv4:{target}", "MODEL_NAME": "tiny"}) as (base, _):
        for _ in range(20):
            assert requests.post(base + "/predict", json={"image": image}, timeout=30).status_code == 200
    served = [s.request_count() - b for s, b in zip(server_pair, before)]
    assert all(n >= 5 for n in served), served  # round_robin: about half each
    assert sum(served) >= 20


def test_two_servers_behind_one_dns_name_both_get_requests(server_pair):
    """`dns:` target: a name with two A records (served by a loopback DNS server named in the
    target's authority, which gRPC's c-ares resolver queries) -> round_robin over both."""
    image, _ = png_b64()
    before = [s.request_count() for s in server_pair]
    with TinyDNSServer("model-server-headless.test", ["127.0.0.1", "127.0.0.2"]) as dns:
        target = f"dns://127.0.0.1:{dns.port}/model-server-headless.test:{server_pair[0].grpc_port}"
        with gateway_process({"TF_SERVING_HOST": target, "MODEL_NAME": "tiny"}) as (base, _):
            for _ in range(20):
                assert requests.post(base + "/predict", json={"image": image}, timeout=30).status_code == 200
        assert dns.a_queries >= 1
    served = [s.request_count() - b for s, b in zip(server_pair, before)]
    assert all(n >= 5 for n in served), served
    assert sum(served) >= 20


def test_reexport_with_new_tensor_names_needs_no_configuration(model_base, keras_model, tmp_path):
    """Version 2 is plain `keras.Model.export()` output of the same weights behind an input named
    `inputs` (Keras 3 names the scores `output_0`; no labels output): the gateway rediscovers
    the signature by itself and keeps answering."""
    import keras

    base = tmp_path / "tiny"
    shutil.copytree(model_base["base"] / "1", base / "1")
    server = ModelServe(base, "tiny", free_port(), free_port()).wait_ready()
    image, pixels = png_b64()
    try:
        with gateway_process(
            {"TF_SERVING_HOST": server.target, "MODEL_NAME": "tiny", "LABELS": ",".join(TINY_LABELS)}
        ) as (gw, _):
            assert requests.post(gw + "/predict", json={"image": image}, timeout=30).status_code == 200
            v1 = requests.get(gw + "/readyz", timeout=10).json()
            assert (v1["input"], v1["scores"]) == ("pixels", "logits"), v1
            inputs = keras.Input(shape=(TINY_SIZE, TINY_SIZE, 3), name="inputs")
            keras.Model(inputs, keras_model(inputs)).export(str(tmp_path / "staging"), verbose=False)
            (tmp_path / "staging").rename(base / "2")
            deadline = time.monotonic() + 60
            while server.versions().get(2) != "AVAILABLE":
                assert time.monotonic() < deadline, server.versions()
                time.sleep(0.3)
            response = requests.post(gw + "/predict", json={"image": image}, timeout=30)
            assert response.status_code == 200, response.text
            assert list(response.json()) == TINY_LABELS
            np.testing.assert_allclose(
                list(response.json().values()), keras_logits(keras_model, pixels), rtol=1e-4, atol=1e-4
            )
            # The request above went to version 2 (the model server serves the highest), so the
            # gateway must already have rediscovered it; /readyz reports it once its cache expires.
            time.sleep(2.5)
            ready = requests.get(gw + "/readyz", timeout=10).json()
            assert (ready["model_version"], ready["input"], ready["scores"]) == (2, "inputs", "output_0"), (
                ready
            )
    finally:
        server.stop()
