"""Request handling that needs no model server: validation, error shape, 404/405/413, ids."""

import base64

import pytest

from gateway.app import create_app
from gateway.settings import Settings


@pytest.fixture(scope="module")
def client():
    # The model server address is never dialled by these requests: they fail validation first.
    app = create_app(Settings(tf_serving_host="127.0.0.1:1", max_request_bytes=4096), start_refresh=False)
    yield app.test_client()
    app.extensions["gateway"]["model"].close()


def assert_error(response, status, code):
    assert response.status_code == status, response.data
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert b"Traceback" not in response.data and b"<html" not in response.data.lower()


@pytest.mark.parametrize(
    "kwargs,status,code",
    [
        (dict(data="not json", content_type="application/json"), 400, "invalid_json"),
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
        (dict(data={"nofile": "x"}, content_type="multipart/form-data"), 400, "missing_image"),
        (dict(data=b"x" * 5000, content_type="application/json"), 413, "request_too_large"),
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
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_url_prefix_serves_the_api_under_it_and_keeps_the_bare_paths():
    app = create_app(Settings(tf_serving_host="127.0.0.1:1", url_prefix="/clothes"), start_refresh=False)
    try:
        client = app.test_client()
        assert client.get("/clothes/healthz").status_code == 200
        assert client.get("/healthz").status_code == 200  # probes use the bare path
        # Routed to /predict: it fails validation like any /predict, not with a 404.
        assert_error(client.post("/clothes/predict", json={}), 400, "invalid_request")
        assert_error(client.get("/clothesx/healthz"), 404, "not_found")
    finally:
        app.extensions["gateway"]["model"].close()
