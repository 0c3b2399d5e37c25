"""`python -m gateway` on the event-loop stack (work in progress, issue 13; selected with
GATEWAY_STACK=aio until it replaces waitress): the same settings, logs and SIGTERM drain as
__main__.py — not-ready at once, accepting for SHUTDOWN_DELAY_SECONDS, then no new connections,
requests in flight finished for up to SHUTDOWN_GRACE_SECONDS, then exit."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiohttp import web

from gateway.aio_app import STATE, JsonErrorAppRunner, create_aio_app
from gateway.allocator import keep_request_buffers_in_heap
from gateway.settings import Settings

log = logging.getLogger("gateway")


async def serve(settings: Settings) -> None:
    keep_request_buffers_in_heap()
    app = create_aio_app(settings)
    state = app[STATE]
    runner = JsonErrorAppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_grace_seconds,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.listen_host, settings.port, backlog=2048)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the bound port when PORT=0
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if signum == signal.SIGINT or state["draining"]:
            stop.set()
            return
        state["draining"] = True  # /readyz answers 503 from now on
        log.info(
            "SIGTERM: draining",
            extra={
                "fields": {
                    "grace_seconds": settings.shutdown_grace_seconds,
                    "delay_seconds": settings.shutdown_delay_seconds,
                }
            },
        )
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    log.info(
        "gateway listening",
        extra={
            "fields": {
                "host": settings.listen_host,
                "port": port,
                "tf_serving_host": settings.tf_serving_host,
                "model_name": settings.model_name,
            }
        },
    )
    await stop.wait()
    if state["draining"] and settings.shutdown_delay_seconds > 0:
        await asyncio.sleep(settings.shutdown_delay_seconds)  # late-routed connections still land
    await site.stop()  # no new connections
    deadline = time.monotonic() + settings.shutdown_grace_seconds
    while state["metrics"].active() > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    log.info("drained, stopping", extra={"fields": {"in_flight": state["metrics"].active()}})
    await runner.cleanup()
    log.info("gateway stopped")
