"""Helpers shared by the gateway tests: the gateway served on an event loop in a thread, or run
as a real `python -m gateway` process. (A uniquely named module: every test folder of the
repository has a `conftest`, so `from conftest import ...` would pick whichever loaded last.)"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import subprocess
import threading
import time

import requests
from aiohttp import web

from gateway.app import create_app
from gateway.server import app_runner
from support.gateway_process import GatewayProcess

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "images"


@contextlib.contextmanager
def serve_gateway(settings, **app_kwargs):
    """Serve create_app(settings) on an event loop in a thread, as `python -m gateway` serves it
    (JSON protocol errors included), on a free loopback port; yield its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-loop", daemon=True)
    thread.start()

    async def start():
        runner = app_runner(create_app(settings, **app_kwargs), settings)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, 10)
        yield base
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@contextlib.contextmanager
def gateway_process(env: dict[str, str], port: int | None = None, log_dir: pathlib.Path | None = None):
    """Run `python -m gateway` with `env` on a free port until healthy; yield (base URL, the
    GatewayProcess: `.process` is its Popen, `.log_text()` its output)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        gateway = GatewayProcess(env, pathlib.Path(log_dir or scratch), port=port)
        with gateway:
            yield gateway.base, gateway


def _wait_healthy(base: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{output[-3000:]}")
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway at {base} not healthy within {timeout} s")
