"""Acceptance 4: a table of bad inputs against running gateways (event loop, real sockets, real
image HTTP server, real gRPC servers). Each case must get a JSON error with the right status
within its deadline, and the gateway must still serve a good request right after."""

import base64
import ipaddress
import time

import grpc
import pytest
import requests
from gateway_testing import serve_gateway
from numpy_model_server import FakeModel, NumpyModelServer

from gateway.settings import Settings
from support.net import free_port

pytestmark = pytest.mark.integration

HAT = base64.b64encode(
    (__import__("pathlib").Path(__file__).parents[2] / "samples/images/hat.jpg").read_bytes()
).decode()
TEXT_B64 = base64.b64encode(b"just some text, not a picture").decode()


def url(path):
    return lambda srv: {"json": {"url": srv.url(path)}}


def raw_url(value):
    return lambda srv: {"json": {"url": value.replace("PORT", str(srv.port))}}


def body(**kwargs):
    return lambda srv: kwargs


# (case id, gateway, request builder, status, code, deadline seconds)
CASES = [
    (
        "ssrf-metadata-ip",
        "main",
        raw_url("http://169.254.169.254/latest/meta-data/"),
        403,
        "url_forbidden",
        2,
    ),
    (
        "ssrf-metadata-ipv4-mapped",
        "main",
        raw_url("http://[::ffff:169.254.169.254]/"),
        403,
        "url_forbidden",
        2,
    ),
    ("ssrf-metadata-nat64", "main", raw_url("http://[64:ff9b::a9fe:a9fe]/"), 403, "url_forbidden", 2),
    ("ssrf-private-10", "main", raw_url("http://10.0.0.1:PORT/img/hat.jpg"), 403, "url_forbidden", 2),
    ("ssrf-private-192", "main", raw_url("http://192.168.0.1:PORT/img/hat.jpg"), 403, "url_forbidden", 2),
    (
        "ssrf-loopback-outside-allowlist",
        "main",
        raw_url("http://127.0.0.2:PORT/img/hat.jpg"),
        403,
        "url_forbidden",
        2,
    ),
    (
        "ssrf-loopback-decimal",
        "strict",
        raw_url("http://2130706433:PORT/img/hat.jpg"),
        403,
        "url_forbidden",
        2,
    ),
    ("ssrf-loopback-hex-short", "strict", raw_url("http://0x7f.1:PORT/img/hat.jpg"), 403, "url_forbidden", 2),
    (
        "ssrf-loopback-by-dns-name",
        "strict",
        raw_url("http://localhost:PORT/img/hat.jpg"),
        403,
        "url_forbidden",
        3,
    ),
    ("ssrf-ipv6-loopback", "main", raw_url("http://[::1]:PORT/img/hat.jpg"), 403, "url_forbidden", 2),
    ("ssrf-ipv6-unspecified", "main", raw_url("http://[::]:PORT/img/hat.jpg"), 403, "url_forbidden", 2),
    ("ssrf-ipv6-link-local", "main", raw_url("http://[fe80::1]/"), 403, "url_forbidden", 2),
    ("ssrf-ipv6-unique-local", "main", raw_url("http://[fd00::1]/"), 403, "url_forbidden", 2),
    ("ssrf-multicast", "main", raw_url("http://224.0.0.251/"), 403, "url_forbidden", 2),
    (
        "ssrf-redirect-to-metadata",
        "main",
        url("/redirect?to=http://169.254.169.254/latest/meta-data/"),
        403,
        "url_forbidden",
        2,
    ),
    ("ssrf-redirect-to-ipv6-loopback", "main", url("/redirect?to=http://[::1]/"), 403, "url_forbidden", 2),
    ("ssrf-redirect-to-private", "main", url("/redirect?to=http://10.1.2.3/x.jpg"), 403, "url_forbidden", 2),
    ("ssrf-redirect-to-file", "main", url("/redirect?to=file:///etc/passwd"), 400, "invalid_url", 2),
    ("too-many-redirects", "main", url("/chain/5"), 502, "too_many_redirects", 3),
    ("scheme-file", "main", raw_url("file:///etc/passwd"), 400, "invalid_url", 2),
    ("scheme-gopher", "main", raw_url("gopher://127.0.0.1:PORT/_x"), 400, "invalid_url", 2),
    ("scheme-ftp", "main", raw_url("ftp://example.com/hat.jpg"), 400, "invalid_url", 2),
    (
        "credentials-in-url",
        "main",
        raw_url("http://user:pw@127.0.0.1:PORT/img/hat.jpg"),
        403,
        "url_forbidden",
        2,
    ),
    ("port-not-allowed", "main", raw_url("http://127.0.0.1:6379/"), 403, "url_forbidden", 2),
    (
        "nothing-listening",
        "main",
        lambda srv: {"json": {"url": f"http://127.0.0.1:{srv.closed_port}/x.jpg"}},
        502,
        "fetch_failed",
        3,
    ),
    ("upstream-404", "main", url("/status/404"), 502, "fetch_failed", 2),
    ("upstream-500", "main", url("/status/500"), 502, "fetch_failed", 2),
    ("slow-server-past-deadline", "main", url("/slow"), 504, "fetch_timeout", 3),
    ("stalled-server", "main", url("/stall"), 504, "fetch_timeout", 3),
    ("fetched-image-too-large", "main", url("/big"), 413, "image_too_large", 3),
    ("fetched-image-too-large-chunked", "main", url("/big-chunked"), 413, "image_too_large", 3),
    ("html-labelled-as-jpeg", "main", url("/html-as-jpeg"), 415, "unsupported_image", 2),
    ("non-image-base64", "main", body(json={"image": TEXT_B64}), 415, "unsupported_image", 2),
    ("truncated-jpeg-url", "main", url("/truncated.jpg"), 422, "invalid_image", 3),
    (
        "truncated-jpeg-upload",
        "main",
        lambda srv: {"files": {"file": ("t.jpg", srv.httpd.files["hat.jpg"][:5000])}},
        422,
        "invalid_image",
        3,
    ),
    ("decompression-bomb", "main", url("/bomb.png"), 413, "image_too_many_pixels", 3),
    (
        "oversized-body",
        "main",
        body(data=b"{" + b" " * 3_500_000 + b"}", headers={"Content-Type": "application/json"}),
        413,
        "request_too_large",
        5,
    ),
    (
        "bad-json",
        "main",
        body(data=b'{"url": ', headers={"Content-Type": "application/json"}),
        400,
        "invalid_json",
        2,
    ),
    ("json-not-object", "main", body(json=["http://example.com/a.jpg"]), 400, "invalid_request", 2),
    ("empty-body", "main", body(data=b""), 400, "invalid_json", 2),
    (
        "url-and-image",
        "main",
        body(json={"url": "http://example.com/a.jpg", "image": HAT}),
        400,
        "invalid_request",
        2,
    ),
    ("bad-base64", "main", body(json={"image": "not*base64!"}), 400, "invalid_base64", 2),
    ("top-k-zero", "main", body(json={"image": HAT, "top_k": 0}), 400, "invalid_top_k", 2),
    ("top-k-negative", "main", body(json={"image": HAT, "top_k": -3}), 400, "invalid_top_k", 2),
    ("top-k-text", "main", body(json={"image": HAT, "top_k": "all"}), 400, "invalid_top_k", 2),
    ("multipart-without-file", "main", body(files={"top_k": (None, "3")}), 400, "missing_image", 2),
    ("model-server-down", "down", body(json={"image": HAT}), 503, "model_unavailable", 5),
    ("wrong-model-name", "wrongmodel", body(json={"image": HAT}), 503, "model_not_found", 5),
    ("model-too-slow", "slowmodel", body(json={"image": HAT}), 504, "model_timeout", 4),
    ("model-internal-error", "failingmodel", body(json={"image": HAT}), 502, "model_error", 4),
]


@pytest.fixture(scope="module")
def gateways(image_server):
    loopback = (ipaddress.ip_network("127.0.0.1/32"),)
    ports = frozenset({image_server.port, 80, 443})
    image_server.closed_port = free_port()
    common = dict(
        fetch_allowed_ports=ports | {image_server.closed_port},
        fetch_timeout_seconds=1.0,
        fetch_max_bytes=1_000_000,
        max_request_bytes=3_000_000,
        max_image_pixels=50_000_000,
        metadata_refresh_seconds=3600,
    )
    slow = FakeModel(delay_seconds=2.0)
    failing = FakeModel(fail_with=grpc.StatusCode.INTERNAL)
    with (
        NumpyModelServer() as good,
        NumpyModelServer(slow) as slow_server,
        NumpyModelServer(failing) as failing_server,
        serve_gateway(
            Settings(tf_serving_host=good.target, fetch_allowed_networks=loopback, **common)
        ) as main,
        serve_gateway(Settings(tf_serving_host=good.target, **common)) as strict,
        serve_gateway(Settings(tf_serving_host=f"127.0.0.1:{free_port()}", **common)) as down,
        serve_gateway(Settings(tf_serving_host=good.target, model_name="no-such-model", **common)) as wrong,
        serve_gateway(
            Settings(tf_serving_host=slow_server.target, grpc_timeout_seconds=0.5, **common)
        ) as slow_gw,
        serve_gateway(Settings(tf_serving_host=failing_server.target, **common)) as failing_gw,
    ):
        yield {
            "main": main,
            "strict": strict,
            "down": down,
            "wrongmodel": wrong,
            "slowmodel": slow_gw,
            "failingmodel": failing_gw,
            "good_model": good,
            "slow_model": slow,
            "failing_model": failing,
        }


def test_the_table_has_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case,gateway,build,status,code,deadline", CASES, ids=[c[0] for c in CASES])
def test_bad_input(gateways, image_server, case, gateway, build, status, code, deadline):
    base = gateways[gateway]
    start = time.monotonic()
    response = requests.post(base + "/predict", timeout=deadline + 5, **build(image_server))
    elapsed = time.monotonic() - start
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text
    assert elapsed < deadline, f"{case} took {elapsed:.2f}s"
    assert_still_serving(gateways, gateway)


def assert_still_serving(gateways, name):
    base = gateways[name]
    assert requests.get(base + "/healthz", timeout=5).status_code == 200
    if name in ("down", "wrongmodel", "slowmodel", "failingmodel"):
        # These gateways' model servers are broken on purpose; the process must still answer
        # and a good request must succeed as soon as the model side is healthy again.
        if name == "slowmodel":
            gateways["slow_model"].delay_seconds = 0.0
        elif name == "failingmodel":
            gateways["failing_model"].fail_with = None
        else:
            return
    good = requests.post(base + "/predict", json={"image": HAT}, timeout=10)
    assert good.status_code == 200, good.text
    assert len(good.json()) == 10
    if name == "slowmodel":
        gateways["slow_model"].delay_seconds = 2.0
    elif name == "failingmodel":
        gateways["failing_model"].fail_with = grpc.StatusCode.INTERNAL
