"""MAX_BUFFERED_BYTES: request bodies and downloaded images held in memory at once are bounded in
total, over real sockets. On one event loop nothing else bounds them (each is capped by
MAX_REQUEST_BYTES or FETCH_MAX_BYTES, but fifty concurrent 16 MB uploads would still take a
512 MiB pod past its limit)."""

import base64
import ipaddress
import logging
import socket
import time

import pytest
import requests
from gateway_testing import serve_gateway
from numpy_model_server import FakeModel, NumpyModelServer

from gateway.settings import Settings, SettingsError

pytestmark = pytest.mark.integration

BIG = 300_000  # a raw image body of this many bytes: the sample JPEG padded after its end marker


@pytest.fixture(scope="module")
def model_server():
    with NumpyModelServer(FakeModel()) as server:
        yield server


def _stall(port: int, declared: int, first: bytes) -> socket.socket:
    """A client that sends its headers and the start of a `declared`-byte image body, then waits."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode()
        + first
    )
    return client


def _post_raw(base: str, body: bytes) -> requests.Response:
    return requests.post(base + "/predict", data=body, headers={"Content-Type": "image/jpeg"}, timeout=10)


def test_an_upload_past_the_budget_is_refused_at_once_and_small_requests_still_fit(
    model_server, sample_jpeg, caplog
):
    big = sample_jpeg + b"\0" * (BIG - len(sample_jpeg))
    settings = Settings(
        tf_serving_host=model_server.target,
        max_request_bytes=BIG,
        max_buffered_bytes=BIG + 100_000,
        fetch_max_bytes=BIG,
    )
    with serve_gateway(settings, start_refresh=False) as base:
        assert _post_raw(base, big).status_code == 200  # alone, a body of the largest size is served
        port = int(base.rsplit(":", 1)[1])
        with _stall(port, BIG, big[:1000]):
            time.sleep(0.2)  # its headers are read and its BIG bytes reserved
            started = time.monotonic()
            refused = _post_raw(base, big)
            waited = time.monotonic() - started
            small = requests.post(
                base + "/predict", json={"image": base64.b64encode(sample_jpeg).decode()}, timeout=10
            )
        assert refused.status_code == 503 and waited < 2, (refused.status_code, waited)
        assert refused.headers["Retry-After"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "server_busy" and "MAX_BUFFERED_BYTES" in error["message"], error
        assert small.status_code == 200, small.text
        # The stalled client hung up: its reservation is given back and the upload now fits.
        deadline = time.monotonic() + 10
        while (retry := _post_raw(base, big)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert retry.status_code == 200, retry.text
        metrics = requests.get(base + "/metrics", timeout=10).text
        assert 'gateway_errors_total{code="server_busy"} 1.0' in metrics
    # Hanging up mid-body is the client's doing: a 400 in the metrics, no traceback in the log.
    assert 'gateway_errors_total{code="bad_request"} 1.0' in metrics
    assert 'code="internal_error"' not in metrics
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_chunked_body_reserves_the_largest_allowed_size(model_server, sample_jpeg):
    """Without a Content-Length the gateway cannot know the size in advance: it counts
    MAX_REQUEST_BYTES, so two chunked uploads do not fit a budget of one and a half."""
    settings = Settings(
        tf_serving_host=model_server.target,
        max_request_bytes=BIG,
        max_buffered_bytes=BIG * 3 // 2,
        fetch_max_bytes=BIG,
    )
    with serve_gateway(settings, start_refresh=False) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as chunked:
            chunked.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b"3e8\r\n" + sample_jpeg[:1000] + b"\r\n"
            )
            time.sleep(0.2)
            refused = requests.post(
                base + "/predict",
                data=iter([sample_jpeg]),  # requests sends an iterator chunked
                headers={"Content-Type": "image/jpeg"},
                timeout=10,
            )
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "server_busy"
            chunked.sendall(b"%x\r\n" % (len(sample_jpeg) - 1000) + sample_jpeg[1000:] + b"\r\n0\r\n\r\n")
            answer = chunked.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert _post_raw(base, sample_jpeg).status_code == 200


def test_a_downloaded_image_counts_in_the_budget_until_its_prediction_is_answered(
    model_server, image_server, sample_jpeg
):
    """A URL prediction whose image (by its Content-Length) does not fit beside the bodies being
    held is answered 503 `server_busy` at once; one that fits is served, and gives its bytes back."""
    settings = Settings(
        tf_serving_host=model_server.target,
        max_request_bytes=BIG,
        max_buffered_bytes=BIG + len(sample_jpeg) // 2,
        fetch_max_bytes=BIG,
        fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
        fetch_allowed_ports=frozenset({image_server.port}),
    )
    url = {"url": image_server.url("/img/hat.jpg")}
    with serve_gateway(settings, start_refresh=False) as base:
        assert requests.post(base + "/predict", json=url, timeout=10).status_code == 200
        hits = image_server.hits.get("/img/hat.jpg", 0)
        port = int(base.rsplit(":", 1)[1])
        with _stall(port, BIG, sample_jpeg[:1000]):
            time.sleep(0.2)  # BIG bytes reserved: the image no longer fits beside them
            refused = requests.post(base + "/predict", json=url, timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1", refused.text
        error = refused.json()["error"]
        assert error["code"] == "server_busy" and f"image's {len(sample_jpeg)}" in error["message"], error
        assert image_server.hits["/img/hat.jpg"] == hits + 1  # asked for, refused at its headers
        deadline = time.monotonic() + 10
        while (retry := requests.post(base + "/predict", json=url, timeout=10)).status_code == 503:
            assert time.monotonic() < deadline, retry.text
            time.sleep(0.1)
        assert retry.status_code == 200, retry.text
        # Every reservation was given back: the largest body fits again.
        assert _post_raw(base, sample_jpeg + b"\0" * (BIG - len(sample_jpeg))).status_code == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MAX_REQUEST_BYTES": "2048", "MAX_BUFFERED_BYTES": "2047"},
            "MAX_BUFFERED_BYTES=2047 is below MAX_REQUEST_BYTES=2048",
        ),
        (
            {"FETCH_MAX_BYTES": "20000000", "MAX_REQUEST_BYTES": "2048", "MAX_BUFFERED_BYTES": "19999999"},
            "MAX_BUFFERED_BYTES=19999999 is below FETCH_MAX_BYTES=20000000",
        ),
    ],
)
def test_a_budget_below_one_largest_body_or_image_is_a_configuration_error(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
