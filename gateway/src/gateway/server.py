"""The aiohttp runner the gateway is served by (`python -m gateway`, and the tests): its
connection settings, and JSON for the errors aiohttp answers itself.

Malformed HTTP (bad Content-Length or chunk framing, an unknown method, headers over the
parser's limits) never reaches the app: aiohttp's connection handler answers it with a text/plain
page of its own. Clients of the gateway get one error shape whatever failed, so the handler here
renders `{"error": {"code", "message"}}` instead, logs the client's mistake as one line (no
traceback) and closes the connection (tests/reliability/test_hostile_input.py).
"""

from __future__ import annotations

import logging

from aiohttp import web, web_protocol, web_server

from gateway.errors import HTTP_STATUS_CODES, error_response
from gateway.settings import Settings

log = logging.getLogger("gateway.access")

# An idle kept-alive connection, or one that has not finished sending its request head (a
# slowloris client), is closed after this long. Longer than the 60 s for which nginx and
# ingress-nginx keep idle upstream connections, so the gateway does not close one they are about
# to reuse.
KEEPALIVE_SECONDS = 75.0
# A request body (JSON, upload or raw image) must have arrived this long after its headers, or the
# request is answered 408 and the connection closed: a client that stops sending mid-body would
# otherwise hold its request open for ever. Enough for MAX_REQUEST_BYTES' default 16 MB at about
# 1 Mbit/s; behind an ingress, which buffers bodies, it never comes near.
BODY_SECONDS = 120.0


class _JsonErrorRequestHandler(web_protocol.RequestHandler):
    __slots__ = ()

    def handle_error(self, request, status=500, exc=None, message=None):
        if request.writer.output_size > 0:  # part of a response went out: only closing is left
            raise ConnectionError("response already started, cannot send an error")
        code = HTTP_STATUS_CODES.get(status, "bad_request")
        if status == 500:
            detail = "internal error; see the gateway log"
            log.error("error while handling a request", exc_info=exc)
        else:  # the client's mistake: one line, no traceback
            detail = (message or str(exc) or "malformed HTTP").strip().splitlines()[0][:300]
            log.info("malformed HTTP request", extra={"fields": {"status": status, "error": detail}})
        response = error_response(status, code, detail)
        response.force_close()
        return response


class _JsonErrorServer(web_server.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorAppRunner(web.AppRunner):
    """web.AppRunner whose connections answer protocol-level errors as JSON."""

    async def _make_server(self) -> web_server.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server


def app_runner(app: web.Application, settings: Settings) -> JsonErrorAppRunner:
    return JsonErrorAppRunner(
        app,
        access_log=None,  # the app's own middleware logs each request (app.py)
        handle_signals=False,  # __main__ drains on SIGTERM itself
        keepalive_timeout=KEEPALIVE_SECONDS,
        shutdown_timeout=settings.shutdown_grace_seconds,
    )
