"""The gateway's image fetcher (gateway.fetch.ImageFetcher, a coroutine API) on one event loop in
a thread, behind a synchronous adapter, so that the fetch tests can fetch from several threads at
once and time them (test_gateway_fetch.py, test_gateway_fetch_pool.py)."""

from __future__ import annotations

import asyncio
import ipaddress
import threading

from keep_alive_server import KeepAliveServer

from gateway import fetch
from gateway.settings import Settings

_LOOP: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        threading.Thread(target=_LOOP.run_forever, name="fetch-test-loop", daemon=True).start()
    return _LOOP


class ImageFetcher:
    """fetch.ImageFetcher on the tests' loop, called synchronously."""

    def __init__(self, settings):
        self.inner = fetch.ImageFetcher(settings)
        self.tls = self.inner.tls

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, _loop()).result()

    def fetch(self, url, reserve=None):
        return self._run(self.inner.fetch(url, reserve))

    def idle_connections(self) -> int:
        async def count():
            return self.inner.idle_connections()

        return self._run(count())

    def close(self):
        self._run(self.inner.close())


def keep_alive_fetcher(server: KeepAliveServer, **overrides) -> ImageFetcher:
    return ImageFetcher(server.settings(**overrides))


def loopback_fetcher(image_server, **overrides) -> ImageFetcher:
    settings = dict(
        fetch_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
        fetch_allowed_ports=frozenset({image_server.port}),
        fetch_timeout_seconds=1.5,
    )
    settings.update(overrides)
    return ImageFetcher(Settings(**settings))
