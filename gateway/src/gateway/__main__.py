"""`python -m gateway`: read settings, build the app, serve it on one asyncio event loop.

SIGTERM drains instead of dropping requests: the gateway reports not-ready at once, keeps
accepting for SHUTDOWN_DELAY_SECONDS (default 0; set it to a few seconds in Kubernetes, where
endpoint removal lags), then stops accepting new connections, lets requests in flight finish (up
to SHUTDOWN_GRACE_SECONDS, default 20, inside Kubernetes' default 30 s termination grace), then
closes the connections, the fetcher and the gRPC channel. A second SIGTERM, or SIGINT, ends the
wait for the delay at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

from aiohttp import web

from gateway.allocator import keep_request_buffers_in_heap
from gateway.app import GATEWAY, create_app
from gateway.logs import configure_logging
from gateway.server import app_runner
from gateway.settings import Settings, SettingsError

log = logging.getLogger("gateway")


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"gateway: bad configuration: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    keep_request_buffers_in_heap()  # before the first request: less CPU per request (bench/)
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    state = app[GATEWAY]
    runner = app_runner(app, settings)
    await runner.setup()
    site = web.TCPSite(runner, settings.listen_host, settings.port, backlog=2048)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the bound port when PORT=0
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal(signum: int) -> None:
        if signum == signal.SIGINT or state["draining"]:
            hurry.set()
        if not state["draining"]:
            state["draining"] = True  # /readyz answers 503 from now on
            log.info(
                "SIGTERM: draining" if signum == signal.SIGTERM else "SIGINT: draining",
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
    if settings.shutdown_delay_seconds > 0 and not hurry.is_set():
        # Kubernetes removes a terminating pod from Service endpoints asynchronously: keep
        # accepting (while /readyz already fails) so late-routed connections are not refused.
        try:
            await asyncio.wait_for(hurry.wait(), settings.shutdown_delay_seconds)
        except TimeoutError:
            pass
    await site.stop()  # no new connections; open ones keep being served
    deadline = time.monotonic() + settings.shutdown_grace_seconds
    while state["metrics"].active() > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    log.info("drained, stopping", extra={"fields": {"in_flight": state["metrics"].active()}})
    await runner.cleanup()
    log.info("gateway stopped")


if __name__ == "__main__":
    sys.exit(main())
