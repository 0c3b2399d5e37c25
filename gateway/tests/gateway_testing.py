"""Helpers shared by the gateway tests: free ports, the gateway served by waitress in a thread
or run as a real `python -m gateway` process. (A uniquely named module: every test folder of the
repository has a `conftest`, so `from conftest import ...` would pick whichever loaded last.)"""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import threading
import time

import requests

from support.gateway_process import GatewayProcess

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "images"


@contextlib.contextmanager
def aio_gateway(settings):
    """Serve aio_app.create_aio_app(settings) on an event loop in a thread; yield its base URL."""
    import asyncio

    from aiohttp import web

    from gateway.aio_app import JsonErrorAppRunner, create_aio_app

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        runner = JsonErrorAppRunner(create_aio_app(settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(base, 10)
    try:
        yield base
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@contextlib.contextmanager
def waitress_gateway(settings, **app_kwargs):
    """Serve create_app(settings) with waitress on a free loopback port; yield its base URL.
    GATEWAY_STACK=aio serves the event-loop app instead (work in progress, issue 13)."""
    import os

    if os.environ.get("GATEWAY_STACK") == "aio":
        with aio_gateway(settings) as base:
            yield base
        return
    from waitress import create_server

    from gateway.app import create_app

    app = create_app(settings, **app_kwargs)
    server = create_server(app, host="127.0.0.1", port=0, threads=4, ident="gateway-test")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"
    _wait_healthy(base, 10)
    try:
        yield base
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)

        def close_everything():  # runs in the server's own loop thread (no fd races)
            for channel in list(server._map.values()):
                if channel is not server and channel is not server.trigger:
                    channel.close()
            server.close()  # the listener and the trigger: the loop ends when its map is empty

        server.trigger.pull_trigger(close_everything)
        thread.join(5)
        app.extensions["gateway"]["model"].close()


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
