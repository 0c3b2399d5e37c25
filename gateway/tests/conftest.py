"""Fixtures for gateway tests: sample images and a real image HTTP server with misbehaving
routes (helpers the tests import live in gateway_testing.py)."""

from __future__ import annotations

import pytest
from gateway_testing import SAMPLES
from image_http_server import ImageHTTPServer


@pytest.fixture(scope="session")
def sample_jpeg() -> bytes:
    return (SAMPLES / "hat.jpg").read_bytes()


@pytest.fixture(scope="session")
def image_server():
    with ImageHTTPServer(SAMPLES, "127.0.0.1") as server:
        yield server
