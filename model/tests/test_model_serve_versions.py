"""`model serve` waits for a first version before opening its ports, then switches to a newly
dropped-in version while a request loop keeps succeeding (TF Serving's file-system polling)."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from model_tools_testing import TINY_SHAPE, ServeProcess, build_tiny_model

from model_tools import preprocessing
from model_tools.convert import convert
from support.net import port_open

pytestmark = pytest.mark.integration


def _predict_request(x):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(x))
    return request


def test_ports_open_after_first_version_and_new_version_is_served_without_errors(tiny_models, tmp_path, rng):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    base = tmp_path / "models"
    server = ServeProcess(
        "--model_name=m",
        f"--model_base_path={base / 'm'}",
        "--file_system_poll_wait_seconds=0.5",
        "--wait_for_models",
    )
    try:
        # No version yet: like TF Serving, the ports stay closed.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            assert not port_open(server.rest_port) and server.proc.poll() is None
            time.sleep(0.5)
        convert(tiny_models["keras"], base, "m", 1, warmup_records=False)
        assert "models: m v1" in server.wait_listening()

        x = preprocessing.scale(rng.integers(0, 256, (2, *TINY_SHAPE)))
        model_v2 = build_tiny_model(seed=99)
        v2_path = tmp_path / "v2.keras"
        model_v2.save(v2_path)
        expected = {1: tiny_models["model"].predict(x, verbose=0), 2: model_v2.predict(x, verbose=0)}
        assert np.max(np.abs(expected[1] - expected[2])) > 1e-3  # the versions are distinguishable

        results, errors, stop = [], [], threading.Event()

        def request_loop():
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                for _ in range(5000):  # bounded; normally ends by `stop`
                    if stop.is_set():
                        return
                    try:
                        response = stub.Predict(_predict_request(x), timeout=30)
                    except grpc.RpcError as error:
                        errors.append(f"{error.code()}: {error.details()}")
                        continue
                    logits = np.array(response.outputs["class_logits"].float_val).reshape(2, -1)
                    results.append((response.model_spec.version.value, logits))

        loop = threading.Thread(target=request_loop)
        loop.start()
        try:
            time.sleep(1.0)
            convert(v2_path, base, "m", 2)  # atomic drop-in, warmup records included
            dropped = time.monotonic()
            while time.monotonic() - dropped < 30 and not any(v == 2 for v, _ in results):
                time.sleep(0.2)
            switched_after = time.monotonic() - dropped
            time.sleep(1.0)
        finally:
            stop.set()
            loop.join(60)
        assert not errors, errors[:5]
        versions = [v for v, _ in results]
        assert 1 in versions and 2 in versions, f"served versions: {sorted(set(versions))}"
        assert switched_after < 15
        first_v2 = versions.index(2)
        assert all(v == 2 for v in versions[first_v2:])  # never back to the old version
        for version, logits in results:
            assert np.max(np.abs(logits - expected[version])) <= 1e-5
        assert "Unloading servable version {name: m version: 1}" in server.log
    finally:
        assert server.stop() == 0, server.log
