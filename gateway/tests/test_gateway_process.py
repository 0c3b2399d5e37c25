"""`python -m gateway` as a real process: configuration errors, JSON logs with request ids,
`python -m gateway.selftest`, and draining on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import requests
from gateway_testing import gateway_process
from numpy_model_server import FakeModel, NumpyModelServer

from support.net import free_port

pytestmark = pytest.mark.integration


def selftest(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.selftest", url, "--timeout", "20"],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_bad_configuration_exits_naming_the_variable():
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={**os.environ, "FETCH_ALLOWED_NETWORKS": "intranet"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "FETCH_ALLOWED_NETWORKS" in result.stderr


def test_selftest_and_structured_logs():
    with NumpyModelServer(FakeModel(delay_seconds=0.0)) as server:
        with gateway_process({"TF_SERVING_HOST": server.target}) as (base, gateway):
            process = gateway.process
            ok = selftest(base)
            assert ok.returncode == 0, ok.stdout + ok.stderr
            assert ok.stdout.startswith("ok: 10 scores")
            requests.post(
                base + "/predict", json={"image": "%%%"}, headers={"X-Request-ID": "trace-42"}, timeout=10
            )
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            lines = [json.loads(line) for line in gateway.log_text().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("request_id") == "trace-42"]
    assert access and access[0]["status"] == 400 and access[0]["path"] == "/predict"
    assert all({"ts", "level", "logger", "msg"} <= set(entry) for entry in lines)


def test_selftest_fails_when_the_gateway_cannot_predict():
    with gateway_process({"TF_SERVING_HOST": f"127.0.0.1:{free_port()}"}) as (base, _):
        failed = selftest(base)
    assert failed.returncode == 1 and "503" in failed.stderr
    nothing = selftest(f"http://127.0.0.1:{free_port()}")
    assert nothing.returncode == 1


def test_sigterm_lets_the_request_in_flight_finish():
    with NumpyModelServer(FakeModel(delay_seconds=2.0)) as server:
        with gateway_process({"TF_SERVING_HOST": server.target, "GRPC_TIMEOUT_SECONDS": "10"}) as (
            base,
            gateway,
        ):
            process = gateway.process
            requests.get(base + "/readyz", timeout=10)  # signature discovered before the slow call
            result = {}

            def slow_request():
                result["response"] = requests.post(base + "/predict", json={"image": _jpeg_b64()}, timeout=30)

            worker = threading.Thread(target=slow_request)
            worker.start()
            deadline_wait(lambda: server.service.predict_calls >= 1)
            process.send_signal(signal.SIGTERM)
            worker.join(30)
            assert process.wait(30) == 0
    assert result["response"].status_code == 200, result["response"].text
    assert len(result["response"].json()) == 10


def deadline_wait(condition, seconds: float = 20) -> None:
    import time

    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


def _jpeg_b64() -> str:
    import base64

    from gateway.selftest import sample_jpeg

    return base64.b64encode(sample_jpeg()).decode()


def test_sigterm_with_a_delay_keeps_accepting_but_reports_not_ready():
    with NumpyModelServer(FakeModel()) as server:
        with gateway_process({"TF_SERVING_HOST": server.target, "SHUTDOWN_DELAY_SECONDS": "3"}) as (
            base,
            gateway,
        ):
            process = gateway.process
            assert requests.get(base + "/readyz", timeout=10).status_code == 200
            process.send_signal(signal.SIGTERM)
            deadline_wait(lambda: requests.get(base + "/readyz", timeout=5).status_code == 503, 2)
            draining = requests.get(base + "/readyz", timeout=5)  # a new connection is still accepted
            assert draining.json()["error"]["code"] == "shutting_down"
            assert (
                requests.post(base + "/predict", json={"image": _jpeg_b64()}, timeout=10).status_code == 200
            )
            assert process.wait(30) == 0
