"""`python -m gateway`: read settings, build the app, serve it with waitress.

SIGTERM drains instead of dropping requests: the gateway reports not-ready at once, keeps
accepting for SHUTDOWN_DELAY_SECONDS (default 0; set it to a few seconds in Kubernetes, where
endpoint removal lags), then stops accepting new connections, lets requests in flight finish (up
to SHUTDOWN_GRACE_SECONDS, default 20, inside Kubernetes' default 30 s termination grace), then
stops waitress and closes the channel.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from waitress import create_server

from gateway.allocator import keep_request_buffers_in_heap
from gateway.app import create_app
from gateway.logs import configure_logging
from gateway.server_errors import use_json_errors
from gateway.settings import Settings, SettingsError

log = logging.getLogger("gateway")


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"gateway: bad configuration: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if os.environ.get("GATEWAY_STACK") == "aio":  # work in progress (issue 13): the event-loop stack
        import asyncio

        from gateway.aio_main import serve

        asyncio.run(serve(settings))
        return 0
    keep_request_buffers_in_heap()  # before the first request: ~30% less CPU per request (bench/)
    grace = settings.shutdown_grace_seconds
    # Kubernetes removes a terminating pod from Service endpoints asynchronously: keep accepting
    # (while /readyz already fails) for this long so late-routed connections are not refused.
    delay = settings.shutdown_delay_seconds
    app = create_app(settings)
    state = app.extensions["gateway"]
    server = create_server(
        app,
        host=settings.listen_host,
        port=settings.port,
        threads=settings.threads,
        # Slack over the app's own limit so multipart framing around a maximal image still
        # reaches Flask, which answers with a JSON 413 instead of waitress's plain-text one.
        max_request_body_size=settings.max_request_bytes + 64 * 1024,
        ident="gateway",
        clear_untrusted_proxy_headers=True,
        # waitress stops accepting at 100 open connections (its default): 100 clients sending
        # half a request, or an ingress controller's idle keep-alive pool, locked everyone else
        # out for up to channel_timeout (120 s). Idle connections cost waitress a few KB each;
        # poll() because select() fails on fds >= 1024.
        connection_limit=2000,
        asyncore_use_poll=True,
    )
    use_json_errors(server)

    def stop_accepting() -> None:
        # Refuse new connections now instead of leaving them in the listen backlog unanswered
        # until exit; open connections keep being served. Take the listener out of waitress's
        # map before closing it: a poll() interrupted by SIGTERM still holds its fd, reports it
        # as POLLNVAL and skips it (a listener merely shut down reports POLLHUP, and waitress's
        # handle_close would then close the server's trigger under the in-flight requests).
        server.accepting = False
        server.del_channel()
        server.socket.close()

    def drain_then_stop() -> None:
        if delay > 0:
            time.sleep(delay)
            stop_accepting()
        deadline = time.monotonic() + grace
        while state["metrics"].active() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("drained, stopping", extra={"fields": {"in_flight": state["metrics"].active()}})
        signal.raise_signal(signal.SIGINT)  # waitress's run() stops on KeyboardInterrupt

    def on_sigterm(_signum, _frame) -> None:
        if state.get("draining"):
            return
        state["draining"] = True  # /readyz answers 503 from now on
        if delay <= 0:
            stop_accepting()
        log.info("SIGTERM: draining", extra={"fields": {"grace_seconds": grace, "delay_seconds": delay}})
        threading.Thread(target=drain_then_stop, name="drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    # The drain ends waitress with SIGINT; a process started with SIGINT ignored (a background
    # job of a non-interactive shell, nohup) would otherwise never stop after draining.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    log.info(
        "gateway listening",
        extra={
            "fields": {
                "host": settings.listen_host,
                "port": server.effective_port,
                "tf_serving_host": settings.tf_serving_host,
                "model_name": settings.model_name,
            }
        },
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        state["model"].close()
    log.info("gateway stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
