"""Helpers shared by the gateway tests: free ports, the gateway served by waitress in a thread
or run as a real `python -m gateway` process. (A uniquely named module: every test folder of the
repository has a `conftest`, so `from conftest import ...` would pick whichever loaded last.)"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import sys
import threading
import time

import requests

from support.net import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "images"


@contextlib.contextmanager
def waitress_gateway(settings, **app_kwargs):
    """Serve create_app(settings) with waitress on a free loopback port; yield its base URL."""
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
def gateway_process(env: dict[str, str], port: int | None = None):
    """Run `python -m gateway` with `env` on a free port; yield (base URL, Popen)."""
    port = port or free_port()
    full_env = {**os.environ, **env, "PORT": str(port), "LISTEN_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway"], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, 60, process)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


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
