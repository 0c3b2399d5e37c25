"""The harness pieces: the phone photo is reproducible, the instant model server answers, checks
and counts, nginx serves the images, wrk's figures exclude failed requests, targets are judged
in the right direction."""

from __future__ import annotations

import hashlib
import http.server
import io
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from PIL import Image
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from bench import backend as instant
from bench import images, load, servers

pytestmark = pytest.mark.integration  # real processes (model server, nginx, wrk) on loopback


def test_phone_photo_is_deterministic_and_phone_sized():
    first, second = images.make_phone_photo(), images.make_phone_photo()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    with Image.open(io.BytesIO(first)) as photo:
        assert photo.format == "JPEG" and photo.size == (4032, 3024)
    assert 1_500_000 <= len(first) <= 3_000_000


def predict_request(dtype, itemsize_dtype, shape=(1, 299, 299, 3)):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = instant.MODEL_NAME
    tensor = request.inputs[instant.INPUT_NAME]
    tensor.dtype = dtype
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = np.zeros(shape, dtype=itemsize_dtype).tobytes()
    return request


@pytest.fixture(params=["float32", "uint8"])
def served(request, instant_backends):
    server = instant_backends[request.param]
    channel = grpc.insecure_channel(server.address)
    yield request.param, server, channel
    channel.close()


def test_instant_backend_answers_checks_and_counts(served):
    dtype_name, server, channel = served
    dtype, numpy_dtype = {
        "float32": (types_pb2.DT_FLOAT, np.float32),
        "uint8": (types_pb2.DT_UINT8, np.uint8),
    }[dtype_name]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    server.reset()
    response = stub.Predict(predict_request(dtype, numpy_dtype), timeout=10)
    scores = response.outputs[instant.OUTPUT_NAME]
    assert [d.size for d in scores.tensor_shape.dim] == [1, instant.NUM_CLASSES]
    assert list(scores.float_val) == instant.SCORES
    wrong_dtype = types_pb2.DT_UINT8 if dtype == types_pb2.DT_FLOAT else types_pb2.DT_FLOAT
    for bad in (
        predict_request(wrong_dtype, numpy_dtype),
        predict_request(dtype, numpy_dtype, shape=(1, 224, 224, 3)),
    ):
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(bad, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    counts = server.counts()
    assert counts["predicts"] == 1  # rejected requests are not counted
    assert counts["payload_bytes"] == 299 * 299 * 3 * np.dtype(numpy_dtype).itemsize
    server.reset()
    assert server.counts()["predicts"] == 0


def test_instant_backend_metadata_and_status(served):
    dtype_name, _server, channel = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = instant.MODEL_NAME
    request.metadata_field.append("signature_def")
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert stub.GetModelMetadata(request, timeout=10).metadata["signature_def"].Unpack(signatures)
    inputs = signatures.signature_def["serving_default"].inputs
    assert list(inputs) == [instant.INPUT_NAME]
    expected = types_pb2.DT_FLOAT if dtype_name == "float32" else types_pb2.DT_UINT8
    assert inputs[instant.INPUT_NAME].dtype == expected
    assert [d.size for d in inputs[instant.INPUT_NAME].tensor_shape.dim] == [-1, 299, 299, 3]
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=request.model_spec), timeout=10
    )
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_nginx_serves_both_image_cases(tmp_path):
    cases = images.write_cases(tmp_path / "images")
    nginx = servers.nginx(tmp_path / "images", tmp_path).start()
    try:
        nginx.wait_listening(30)
        for path in cases.values():
            response = requests.get(f"{nginx.url}/{path.name}", timeout=10)
            assert response.status_code == 200
            assert response.content == path.read_bytes()
        # POSTing to a static file is refused: wrk must count that as errors, not throughput.
        script = load.write_script(f"{nginx.url}/dataset.jpg", tmp_path / "post.lua")
        refused = load.run_wrk(nginx.url, script, connections=2, seconds=1)
        assert refused["requests"] > 0 and refused["errors"] == refused["requests"]
        assert refused["rps"] == 0
    finally:
        nginx.stop()


def test_pipeline_floor_serves_a_real_prediction(tmp_path, instant_backends):
    """The library-only request path fetches the image from nginx, decodes it and sends the uint8
    tensor the gateway would send: the model server sees one 299x299x3 Predict per request and
    its scores come back."""
    cases = images.write_cases(tmp_path / "images")
    backend = instant_backends["uint8"]
    nginx = servers.nginx(tmp_path / "images", tmp_path).start()
    floor = servers.pipeline_floor(backend.address, tmp_path).start()
    try:
        nginx.wait_listening(30)
        floor.wait_listening(60)
        backend.reset()
        for path in cases.values():
            body = servers.check_prediction(floor, f"{nginx.url}/{path.name}", instant.NUM_CLASSES)
            assert list(body.values()) == instant.SCORES
        counts = backend.counts()
        assert counts["predicts"] == len(cases)
        assert counts["payload_bytes"] == len(cases) * 299 * 299 * 3
    finally:
        floor.stop()
        nginx.stop()


def test_wrk_reports_successful_posts(tmp_path):
    bodies = []

    class Predict(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Predict)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        script = load.write_script("http://127.0.0.1:1/dataset.jpg", tmp_path / "post.lua")
        measured = load.run_wrk(f"http://127.0.0.1:{server.server_address[1]}", script, 1, 1)
    finally:
        server.shutdown()
    assert measured["errors"] == 0 and measured["rps"] > 0
    assert len(bodies) - 1 <= measured["requests"] <= len(bodies)  # one may be cut off at the end
    assert bodies[0] == b'{"url": "http://127.0.0.1:1/dataset.jpg"}'
    assert 0 < measured["p50_ms"] <= measured["p99_ms"]


def test_server_cpu_time_counts_its_child_processes(tmp_path):
    # A parent that forks a worker burning 0.5 s of CPU, like gunicorn's master and worker.
    burn = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    end = time.process_time() + 0.5\n"
        "    while time.process_time() < end: pass\n"
        "    time.sleep(30)\n"
        "time.sleep(30)\n"
    )
    server = servers.Server("burn", [sys.executable, "-c", burn], 0, tmp_path / "burn.log").start()
    try:
        deadline = time.monotonic() + 20
        while server.cpu_seconds() < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0.4 <= server.cpu_seconds() < 5
    finally:
        server.stop()


@pytest.mark.parametrize("module", ["bench", "bench.soak", "bench.profile"])
def test_entry_points_start_outside_pytest(module):
    """`make bench` runs these as plain `python -m`, without the sys.path pytest's conftest sets
    up: each must import and answer --help there too."""
    import pathlib
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=pathlib.Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout


def test_per_thread_counters_see_a_busy_thread_and_its_sleeps():
    """`python -m bench.profile --per-thread` reads /proc: a thread that burns 0.2 s of CPU and
    sleeps five times shows that CPU and at least five voluntary context switches, on its own
    line, per request; a thread that did nothing meanwhile is left out."""
    import os

    from bench import profile

    started, go, done, leave = (threading.Event() for _ in range(4))
    tids = {}

    def busy():
        tids["busy"] = threading.get_native_id()
        started.set()
        go.wait()
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
        for _ in range(5):
            time.sleep(0.01)
        done.set()
        leave.wait()

    def idle():
        tids["idle"] = threading.get_native_id()
        leave.wait()

    threads = [threading.Thread(target=busy), threading.Thread(target=idle)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.05)  # both parked on their events
    try:
        pid = os.getpid()
        before = profile.group_counters(os.getpgrp())
        go.set()
        done.wait(10)
        after = profile.group_counters(os.getpgrp())
    finally:
        leave.set()
        for thread in threads:
            thread.join()
    busy_before, busy_after = before[(pid, tids["busy"])], after[(pid, tids["busy"])]
    assert busy_after.cpu_seconds - busy_before.cpu_seconds >= 0.19
    assert busy_after.voluntary_switches - busy_before.voluntary_switches >= 5

    report = profile.per_thread_report(before, after, requests=2).splitlines()
    line = next(line for line in report if f" {tids['busy']} (pid {pid})" in line)
    cpu_ms, voluntary = (float(value) for value in line.split()[-4:-2])
    assert cpu_ms >= 95  # 0.2 s of CPU over 2 requests
    assert voluntary >= 2.5
    assert not any(f" {tids['idle']} (pid {pid})" in line for line in report)
    assert report[-1].startswith("total")


def test_profile_summary_skips_what_is_not_a_sample(tmp_path):
    """py-spy's raw output can hold a docstring read as a frame name (newlines, bytes that are
    not UTF-8): those pieces are skipped, the samples around them counted."""
    from bench import profile

    raw = tmp_path / "raw.txt"
    raw.write_bytes(
        b"process 1;predict (app.py:1);decode (imaging.py:2) 3\n"
        b"process 1;predict (app.py:1);Selectors module.\n\nThis \xf9 module\n"
        b"process 1;predict (app.py:1);send (grpc.py:3) 1\n"
        b"process 1;idle (loop.py:4) 5\n"
    )
    text = profile.summarize(raw, "predict", 10)
    assert text.startswith("4 samples in request handling")
    assert " 75.0%  decode (imaging.py:2)" in text and " 25.0%  send (grpc.py:3)" in text
