"""The HTTP API on one event loop (aiohttp): routes, request parsing, request ids, access logs
and metrics around them. The image fetch (fetch.py), the model call (grpc.aio) and the decoding of
small images run on the loop thread; big images are decoded in a thread pool (classifier.py).

Why an event loop and not a threaded WSGI server: measured on the dataset JPEG (bench/README),
the threaded Flask/waitress gateway spent more CPU on thread hand-offs and context switches
(~19 per request at 4 connections) than on the decode itself; on one loop the same request path
costs ~0.7x the CPU and serves ~1.4x the requests per second.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway import server
from gateway.classifier import Classifier
from gateway.errors import HTTP_STATUS_CODES, GatewayError, bad_request, error_response
from gateway.fetch import ImageFetcher
from gateway.imaging import configure_pillow
from gateway.logs import request_id_var
from gateway.metrics import GatewayMetrics
from gateway.model_client import ModelClient
from gateway.settings import Settings

log = logging.getLogger("gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_MAX_TOP_K = 1000
_UNLOGGED_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
GATEWAY = web.AppKey("gateway", dict)


def create_app(settings: Settings, start_refresh: bool = True) -> web.Application:
    """Build the gateway app. Its model client (gRPC channel), fetcher and decode pool are made
    when the app starts on a loop and closed at its cleanup; `app[GATEWAY]` holds them, the
    metrics and the `draining` flag."""
    configure_pillow(settings.max_image_pixels)
    metrics = GatewayMetrics()
    state = {"settings": settings, "metrics": metrics, "draining": False}
    # Fetching, decoding and the model call for at most MAX_IN_FLIGHT requests at once; the rest
    # wait here in arrival order with their request already read (each body is capped by
    # MAX_REQUEST_BYTES and BODY_SECONDS, so a slow sender never holds a slot).
    slots = asyncio.Semaphore(settings.max_in_flight)
    buffers = _BufferBudget(settings)

    @web.middleware
    async def observe(request: web.Request, handler):
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        metrics.request_started()
        try:
            response, error_code = await _answer(request, handler, settings)
            resource = request.match_info.route.resource
            route = routes.get(resource, "unmatched")
            elapsed = time.perf_counter() - started
            metrics.answered(route, request.method, response.status, elapsed)
            if error_code is not None:
                metrics.errors.labels(error_code).inc()
            response.headers["X-Request-ID"] = request_id
            if route not in _UNLOGGED_ROUTES or response.status >= 400:
                log.info(
                    "request",
                    extra={
                        "fields": {
                            "method": request.method,
                            "path": request.path,
                            "status": response.status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "bytes_in": request.content_length or 0,
                        }
                    },
                )
            return response
        finally:
            metrics.request_finished()
            request_id_var.reset(token)

    async def predict(request: web.Request) -> web.Response:
        with buffers.hold_body(request), contextlib.ExitStack() as downloaded:
            image, url, top_k = await _read_input(request)
            async with slots:
                if url is not None:
                    with metrics.stage("fetch"):
                        # The image is counted from its response headers until this answer.
                        image = await state["fetcher"].fetch(
                            url, reserve=lambda size: downloaded.enter_context(buffers.hold(size, "image"))
                        )
                    metrics.fetched_bytes.inc(len(image))
                scores, version = await state["classifier"].classify(image, top_k)
        # The body keeps the lesson's shape ({label: score}); the version that answered goes in a
        # header, so clients and rollouts can tell which model version served each request.
        return web.json_response(scores, headers={"X-Model-Version": str(version)})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        if state["draining"]:
            raise GatewayError(503, "shutting_down", "the gateway is draining after SIGTERM")
        ready, detail = await state["readiness"].check()
        if not ready:
            raise GatewayError(503, "not_ready", detail)
        return web.json_response({"status": "ready", **detail})

    async def metrics_endpoint(_request: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def startup(_app: web.Application) -> None:
        model = ModelClient(settings)  # grpc.aio: made on the loop that uses it
        state.update(
            model=model,
            fetcher=ImageFetcher(settings),
            classifier=Classifier(settings, model, metrics),
            readiness=_Readiness(model, settings.ready_cache_seconds),
        )
        if start_refresh:
            model.start_refresh()

    async def cleanup(_app: web.Application) -> None:
        state["classifier"].close()
        await state["fetcher"].close()
        await state["model"].close()

    app = web.Application(client_max_size=settings.max_request_bytes, middlewares=[observe])
    app[GATEWAY] = state
    # The API under URL_PREFIX too (an Ingress that routes <prefix>/predict and passes the path
    # on unchanged), while probes keep using the bare paths. Metrics and logs name the route
    # without the prefix: one series per endpoint however it was reached.
    routes: dict[web.AbstractResource, str] = {}
    for prefix in ("", settings.url_prefix) if settings.url_prefix else ("",):
        for path, add, handler in (
            ("/predict", app.router.add_post, predict),
            ("/healthz", app.router.add_get, healthz),
            ("/readyz", app.router.add_get, readyz),
            ("/metrics", app.router.add_get, metrics_endpoint),
        ):
            routes[add(prefix + path, handler).resource] = path
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


async def _answer(request: web.Request, handler, settings: Settings) -> tuple[web.StreamResponse, str | None]:
    """The handler's response, or the JSON error it raised; and the error code, if any."""
    try:
        response = await handler(request)
    except GatewayError as error:
        response = error_response(error.status, error.code, error.message, error.headers)
        if error.status == 408:  # the rest of the body may still come: not a request boundary
            response.force_close()
        return response, error.code
    except web.HTTPException as error:
        status = error.status
        code = HTTP_STATUS_CODES.get(status, error.reason.lower().replace(" ", "_"))
        message = error.reason
        headers = None
        if status == 413:
            message = f"request body is larger than the limit of {settings.max_request_bytes} bytes"
        if status == 405 and "Allow" in error.headers:
            headers = {"Allow": error.headers["Allow"]}
        return error_response(status, code, message, headers), code
    except Exception:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; see the gateway log"), "internal_error"
    return response, None


async def _read_input(request: web.Request) -> tuple[bytes | None, str | None, int | None]:
    """The image bytes or its URL, and top_k, from a JSON body, a multipart upload or a raw
    image body."""
    # Without a Content-Type aiohttp reports application/octet-stream; the API reads such a body
    # as JSON (as it always has), an octet-stream only when the client says so.
    content_type = request.content_type if "Content-Type" in request.headers else ""
    if content_type == "multipart/form-data":
        try:
            form = await _body(request.post())
        except (ValueError, HttpProcessingError) as error:  # no boundary, broken part headers
            raise bad_request(
                "bad_request", f"malformed multipart body: {str(error).strip()[:200]}"
            ) from None
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            upload = next((value for value in form.values() if isinstance(value, web.FileField)), None)
        if upload is None:
            raise bad_request("missing_image", "multipart body has no file part (use the field name 'file')")
        top_k = form.get("top_k")
        return upload.file.read(), None, _parse_top_k(top_k if isinstance(top_k, str) else None)
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return await _body(request.read()), None, _parse_top_k(request.query.get("top_k"))

    raw = await _body(request.read())
    try:
        body = json.loads(raw)
    except RecursionError:  # [[[[...]]]] x 100,000
        raise bad_request("invalid_json", "JSON body is nested too deeply") from None
    except ValueError:
        body = None
    if body is None:
        raise bad_request(
            "invalid_json", 'body must be JSON like {"url": "https://..."} or {"image": "<base64>"}'
        )
    if not isinstance(body, dict):
        raise bad_request("invalid_request", "JSON body must be an object")
    unknown = set(body) - {"url", "image", "top_k"}
    if unknown:
        raise bad_request("invalid_request", f"unknown field(s): {', '.join(sorted(unknown))}")
    top_k = _parse_top_k(body.get("top_k"))
    has_url, has_image = "url" in body, "image" in body
    if has_url == has_image:
        raise bad_request("invalid_request", 'give exactly one of "url" or "image"')
    if has_image:
        return _decode_base64(body["image"]), None, top_k
    if not isinstance(body["url"], str):
        raise bad_request("invalid_url", "url must be a string")
    return None, body["url"], top_k


async def _body(reading):
    """Await the request body's `reading`, for at most server.BODY_SECONDS. A client that hangs
    up mid-body is answered (to no one) 400 and logged as such, not as a 500 with a traceback."""
    try:
        async with asyncio.timeout(server.BODY_SECONDS):
            return await reading
    except TimeoutError:
        raise GatewayError(
            408,
            "request_timeout",
            f"the request body was not complete {server.BODY_SECONDS:g} s after its headers",
        ) from None
    except ConnectionError:  # the client hung up mid-body: a client error, not a gateway bug
        raise bad_request(
            "bad_request", "the connection closed before the request body was complete"
        ) from None


def _decode_base64(value) -> bytes:
    if not isinstance(value, str) or not value:
        raise bad_request("invalid_base64", "image must be a non-empty base64 string")
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid_base64", "image is not valid base64") from None


def _parse_top_k(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad_request("invalid_top_k", "top_k must be a positive integer")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= _MAX_TOP_K:
        raise bad_request("invalid_top_k", f"top_k must be an integer from 1 to {_MAX_TOP_K}")
    return value


class _BufferBudget:
    """MAX_BUFFERED_BYTES: the request bodies and downloaded images held in memory at once.

    A body counts as its Content-Length (MAX_REQUEST_BYTES when chunked), reserved before a byte
    is read, from the moment a prediction starts reading it until it is answered; a downloaded
    image as the Content-Length of its response (FETCH_MAX_BYTES when there is none), reserved
    when its headers arrive, before its body is read. Concurrent uploads and downloads cannot add
    up past the pod's memory: one that does not fit is refused at once rather than queued (its
    bytes unread), and small JSON requests keep fitting beside the big ones."""

    def __init__(self, settings: Settings):
        self.limit = settings.max_buffered_bytes
        self.largest_body = settings.max_request_bytes
        self.held = 0

    def hold_body(self, request: web.Request):
        size = request.content_length
        return self.hold(self.largest_body if size is None else min(size, self.largest_body), "request body")

    @contextlib.contextmanager
    def hold(self, size: int, what: str):
        if self.held + size > self.limit:
            raise GatewayError(
                503,
                "server_busy",
                f"request bodies and downloaded images of {self.held} bytes are being processed; "
                f"with this {what}'s {size} that passes MAX_BUFFERED_BYTES={self.limit}: retry shortly",
                headers={"Retry-After": "1"},
            )
        self.held += size
        try:
            yield
        finally:
            self.held -= size


class _Readiness:
    """GetModelMetadata answered recently enough, cached so probes don't hammer the server."""

    def __init__(self, model: ModelClient, ttl: float):
        self.model = model
        self.ttl = ttl
        self._checked_at = float("-inf")
        self._result: tuple[bool, object] = (False, "not checked yet")

    async def check(self) -> tuple[bool, object]:
        if time.monotonic() - self._checked_at < self.ttl:
            return self._result
        try:
            sig = await self.model.refresh_signature()
            result = (
                True,
                {"model_version": sig.version, "input": sig.input_name, "scores": sig.scores_output},
            )
        except GatewayError as error:
            result = (False, error.message)
        self._checked_at, self._result = time.monotonic(), result
        return result
