"""Instant model servers shared by the bench tests: each costs a process importing the protos."""

from __future__ import annotations

import pytest

from bench.backend import Backend


@pytest.fixture(scope="session")
def instant_backends():
    servers = {dtype: Backend(dtype).launch() for dtype in ("float32", "uint8")}
    try:
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()
