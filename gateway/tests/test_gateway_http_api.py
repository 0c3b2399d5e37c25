"""Request handling that needs no model server: validation, error shape, 404/405/413, ids —
over real HTTP to the app served as `python -m gateway` serves it."""

import base64
import json

import pytest
import requests
from gateway_testing import serve_gateway

from gateway.settings import Settings


class Client:
    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def get(self, path, **kwargs):
        return self.session.get(self.base + path, timeout=10, **kwargs)

    def post(self, path, **kwargs):
        return self.session.post(self.base + path, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def client():
    # The model server address is never dialled by these requests: they fail validation first.
    settings = Settings(tf_serving_host="127.0.0.1:1", max_request_bytes=4096)
    with serve_gateway(settings, start_refresh=False) as base:
        yield Client(base)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert b"Traceback" not in response.content and b"<html" not in response.content.lower()


@pytest.mark.parametrize(
    "kwargs,status,code",
    [
        (dict(data="not json", headers={"Content-Type": "application/json"}), 400, "invalid_json"),
        (dict(json=["url"]), 400, "invalid_request"),
        (dict(json={}), 400, "invalid_request"),
        (dict(json={"url": "http://a/x.jpg", "image": "AAAA"}), 400, "invalid_request"),
        (dict(json={"uri": "http://a/x.jpg"}), 400, "invalid_request"),
        (dict(json={"url": 42}), 400, "invalid_url"),
        (dict(json={"image": "%%%not base64"}), 400, "invalid_base64"),
        (dict(json={"image": ""}), 400, "invalid_base64"),
        (dict(json={"image": base64.b64encode(b"plain text").decode()}), 415, "unsupported_image"),
        (dict(json={"image": "AAAA", "top_k": 0}), 400, "invalid_top_k"),
        (dict(json={"image": "AAAA", "top_k": "three"}), 400, "invalid_top_k"),
        (dict(json={"image": "AAAA", "top_k": True}), 400, "invalid_top_k"),
        (dict(json={"image": "AAAA", "top_k": 2.5}), 400, "invalid_top_k"),
        (dict(files={"nofile": (None, "x")}), 400, "missing_image"),
        (dict(data=b"x" * 5000, headers={"Content-Type": "application/json"}), 413, "request_too_large"),
        (dict(json={"url": "file:///etc/passwd"}), 400, "invalid_url"),
        (dict(json={"url": "http://169.254.169.254/latest/meta-data/"}), 403, "url_forbidden"),
    ],
)
def test_bad_requests_get_json_errors(client, kwargs, status, code):
    assert_error(client.post("/predict", **kwargs), status, code)


def test_unknown_route_and_wrong_method_are_json(client):
    assert_error(client.get("/nope"), 404, "not_found")
    response = client.get("/predict")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_request_id_is_echoed_or_generated(client):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["X-Request-ID"]) == 32
    assert generated.headers["X-Request-ID"] != client.get("/healthz").headers["X-Request-ID"]


def test_healthz_does_not_need_the_model(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_url_prefix_serves_the_api_under_it_and_keeps_the_bare_paths():
    settings = Settings(tf_serving_host="127.0.0.1:1", url_prefix="/clothes")
    with serve_gateway(settings, start_refresh=False) as base:
        client = Client(base)
        assert client.get("/clothes/healthz").status_code == 200
        assert client.get("/healthz").status_code == 200  # probes use the bare path
        # Routed to /predict: it fails validation like any /predict, not with a 404.
        assert_error(client.post("/clothes/predict", json={}), 400, "invalid_request")
        assert_error(client.get("/clothesx/healthz"), 404, "not_found")
        # one metrics series per endpoint, however it was reached
        routes = {
            line.split('route="')[1].split('"')[0]
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("gateway_requests_total{")
        }
        assert routes == {"/healthz", "/predict", "unmatched"}, routes


def test_get_endpoints_answer_head_too(client):
    response = client.session.head(client.base + "/healthz", timeout=10)
    assert response.status_code == 200 and response.content == b""
    assert_error(client.post("/healthz"), 405, "method_not_allowed")


def test_connections_that_stall_or_idle_are_closed_after_the_keepalive_time(monkeypatch):
    """A client that never finishes its request head (slowloris) or leaves a kept-alive
    connection idle holds a socket for KEEPALIVE_SECONDS, not forever."""
    import socket
    import time

    import gateway.server

    monkeypatch.setattr(gateway.server, "KEEPALIVE_SECONDS", 1.0)
    with serve_gateway(Settings(tf_serving_host="127.0.0.1:1"), start_refresh=False) as base:
        port = int(base.rsplit(":", 1)[1])
        for sent in (
            b"",
            b"POST /predict HTTP/1.1\r\nHost: x\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(sent)
                started = time.monotonic()
                received = b""
                while chunk := sock.recv(4096):  # b"" once the gateway closes
                    received += chunk
                closed_after = time.monotonic() - started
            assert 0.8 <= closed_after <= 5, (sent, closed_after)
            assert received.startswith(b"HTTP/1.1 200") == sent.startswith(b"GET"), received


def test_a_body_that_stops_arriving_is_408_and_the_connection_closed(monkeypatch):
    """Headers, then part of the body, then nothing: the request does not hang for ever."""
    import socket
    import time

    import gateway.server

    monkeypatch.setattr(gateway.server, "BODY_SECONDS", 1.0)
    with serve_gateway(Settings(tf_serving_host="127.0.0.1:1"), start_refresh=False) as base:
        port = int(base.rsplit(":", 1)[1])
        for content_type in ("application/json", "image/jpeg", "multipart/form-data; boundary=b"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                    "Content-Length: 1000\r\n\r\n--b\r\n".encode()
                )
                started = time.monotonic()
                received = sock.recv(4096)
                answered_after = time.monotonic() - started
            head, _, body = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), received
            # closed once aiohttp's lingering read of the rest (10 s at most) ends
            assert b"\r\nConnection: close" in head, head
            assert json.loads(body)["error"]["code"] == "request_timeout"
            assert 0.8 <= answered_after <= 5, (content_type, answered_after)
