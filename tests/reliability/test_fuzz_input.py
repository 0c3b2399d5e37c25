"""Property-based fuzzing (hypothesis) of the JSON body and of image bytes against a real gateway
process and model server: whatever arrives, the answer is JSON, a prediction or a 4xx error,
never a 500 or a stack trace, and the gateway stays up."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reliability_processes import LABELS, GatewayProcess, gateway_env

MAX_IMAGE_PIXELS = 4_000_000
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fuzz_gateway(model_server, image_server, logs_dir):
    env = gateway_env(
        model_server.target,
        image_server.port,
        MAX_IMAGE_PIXELS=str(MAX_IMAGE_PIXELS),
        MAX_REQUEST_BYTES=str(1024 * 1024),
        FETCH_TIMEOUT_SECONDS="2",
    )
    with GatewayProcess(env, logs_dir) as gateway:
        gateway.wait_ready()
        gateway.session = requests.Session()
        yield gateway
        assert gateway.process.poll() is None, "the gateway died while fuzzed"
        assert "Traceback" not in gateway.log_text(), gateway.log_text()[-3000:]


def check_answer(response: requests.Response, top_k=None) -> int:
    """The contract for any input: JSON; 200 with one float per label (or the best top_k, highest
    first), or a 4xx error object."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.text[:300]
    body = response.json()
    if response.status_code == 200:
        assert all(isinstance(v, float) for v in body.values()), body
        if top_k is None:
            assert list(body) == LABELS, body
        else:
            assert set(body) <= set(LABELS) and len(body) == min(top_k, len(LABELS)), (top_k, body)
            assert list(body.values()) == sorted(body.values(), reverse=True), body
    else:
        assert 400 <= response.status_code < 500, (response.status_code, body)
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
        assert "Traceback" not in response.text
    return response.status_code


def _encode(fmt: str, size=(40, 30)) -> bytes:
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


SEEDS = {fmt: _encode(fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP")}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Bodies shaped like requests (the fields the gateway reads, with hostile values) or anything.
request_like = (
    st.fixed_dictionaries(
        {},
        optional={
            "url": json_values
            | st.sampled_from(["http://", "https://[::1", "http://%zz/", "http://127.0.0.3:1/", " "]),
            "image": json_values | st.builds(lambda b: base64.b64encode(b).decode(), st.binary(max_size=64)),
            "top_k": json_values | st.integers(-5, 2000),
        },
    )
    | json_values
    | st.fixed_dictionaries(
        # A real image, so the hostile top_k reaches the code that ranks real model scores.
        {"image": st.sampled_from([base64.b64encode(data).decode() for data in SEEDS.values()])},
        optional={"top_k": json_values | st.integers(-5, 2000)},
    )
)


@FUZZ
@given(body=request_like)
def test_fuzzed_json_bodies_get_json_answers(fuzz_gateway, body, report):
    """Hypothesis-generated JSON bodies (arbitrary nested values, and objects with hostile url /
    image / top_k values): always a JSON answer, a prediction or a 4xx error."""
    response = fuzz_gateway.session.post(
        fuzz_gateway.base + "/predict",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=15,
    )
    top_k = body.get("top_k") if isinstance(body, dict) else None
    status = check_answer(response, int(top_k) if status_ok_top_k(top_k) else None)
    report.tally("test_fuzzed_json_bodies_get_json_answers", status)


def status_ok_top_k(top_k) -> bool:
    """top_k values the gateway accepts (an int, or digits in a string), so a 200 must honour them."""
    return (isinstance(top_k, int) and not isinstance(top_k, bool)) or (
        isinstance(top_k, str) and top_k.strip().isdigit()
    )


@st.composite
def hostile_images(draw):
    """A real small image of each format, then truncated, bit-flipped, spliced or replaced by
    random bytes behind a real magic number."""
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[fmt])
    how = draw(st.sampled_from(["intact", "truncate", "flip", "splice", "random"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 12))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == "splice":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=256))
    elif how == "random":
        data = data[:12] + draw(st.binary(max_size=2048))
    return fmt, how, bytes(data)


@FUZZ
@given(image=hostile_images(), as_upload=st.booleans())
def test_fuzzed_image_bytes_get_json_answers(fuzz_gateway, image, as_upload, report):
    """Hypothesis-mutated JPEG, PNG, GIF, WebP and BMP bytes (truncated, bit-flipped, spliced,
    random after the magic number) as raw body or multipart upload: intact images are predicted,
    everything else is a JSON 4xx."""
    fmt, how, data = image
    if as_upload:
        response = fuzz_gateway.session.post(
            fuzz_gateway.base + "/predict", files={"file": ("x", data)}, timeout=15
        )
    else:
        response = fuzz_gateway.session.post(
            fuzz_gateway.base + "/predict",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=15,
        )
    status = check_answer(response)
    if how == "intact":
        assert status == 200, (fmt, response.text)
    report.tally("test_fuzzed_image_bytes_get_json_answers", status)


def _png_with_size(width: int, height: int) -> bytes:
    """The seed PNG with its IHDR dimensions replaced (and the CRC fixed, so only the size lies)."""
    data = bytearray(SEEDS["PNG"])
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(SEEDS["JPEG"])
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(SEEDS["GIF"])
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    descriptor = data.index(b",", 13)
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(SEEDS["BMP"])
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


LIARS = {"PNG": _png_with_size, "JPEG": _jpeg_with_size, "GIF": _gif_with_size, "BMP": _bmp_with_size}


@FUZZ
@given(fmt=st.sampled_from(sorted(LIARS)), width=st.integers(1, 65535), height=st.integers(1, 65535))
def test_huge_declared_dimensions_are_refused_before_decoding(fuzz_gateway, fmt, width, height, report):
    """Headers that declare up to 65535 x 65535 pixels over a tiny body: anything above
    MAX_IMAGE_PIXELS is a 413 without decoding; the rest a prediction or a JSON 4xx."""
    data = LIARS[fmt](width, height)
    response = fuzz_gateway.session.post(
        fuzz_gateway.base + "/predict",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=15,
    )
    status = check_answer(response)
    if width * height > MAX_IMAGE_PIXELS:
        assert status == 413 and response.json()["error"]["code"] == "image_too_many_pixels", (
            fmt,
            width,
            height,
            response.text,
        )
    report.tally("test_huge_declared_dimensions_are_refused_before_decoding", status)
    report.record(
        "test_huge_declared_dimensions_are_refused_before_decoding", max_image_pixels=MAX_IMAGE_PIXELS
    )
