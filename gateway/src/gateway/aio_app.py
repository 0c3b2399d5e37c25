"""The gateway's HTTP API on one event loop (aiohttp), work in progress toward replacing the
Flask/waitress app (app.py) for issue 13: the same routes, request forms, error shapes, request
ids, access logs and metrics, with the image fetch (fetch_async), the model call (grpc.aio) and
small-image decoding on the loop thread, and large images decoded in a thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
import re
import time
import uuid

import numpy as np
from aiohttp import web, web_protocol, web_server
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image

from gateway.app import _decode_base64, _parse_top_k
from gateway.classifier import softmax, top_scores
from gateway.errors import GatewayError, bad_request
from gateway.fetch_async import AsyncImageFetcher
from gateway.imaging import configure_pillow, decode_resized, sniff_format, to_model_input
from gateway.logs import request_id_var
from gateway.metrics import GatewayMetrics
from gateway.model_client import AsyncModelClient, ModelSignature
from gateway.settings import Settings

log = logging.getLogger("gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Images up to this many pixels (the header says) are decoded on the loop thread (~1 ms for a
# 400x533 JPEG); bigger ones in the pool, so a 12-megapixel photo never stalls other requests.
_INLINE_PIXELS = 1_000_000
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}
STATE = web.AppKey("gateway", dict)


def error_response(status: int, code: str, message: str, headers=None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


# Errors aiohttp answers itself, before the app sees a request (malformed HTTP, an unknown
# method, headers over its limits): the same JSON shape as every other error.
_PROTOCOL_CODES = {
    400: "bad_request",
    413: "request_too_large",
    431: "request_headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


class _JsonErrorRequestHandler(web_protocol.RequestHandler):
    __slots__ = ()

    def handle_error(self, request, status=500, exc=None, message=None):
        if request.writer.output_size > 0:  # part of a response went out: only closing is left
            raise ConnectionError("response already started, cannot send an error")
        code = _PROTOCOL_CODES.get(status, "bad_request")
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


def create_aio_app(settings: Settings) -> web.Application:
    configure_pillow(settings.max_image_pixels)
    metrics = GatewayMetrics()
    state = {
        "settings": settings,
        "metrics": metrics,
        "model": None,  # made on the loop, at startup
        "fetcher": AsyncImageFetcher(settings),
        "pool": concurrent.futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="decode"),
        "draining": False,
        "ready": (float("-inf"), (False, "not checked yet")),
    }

    @web.middleware
    async def observe(request: web.Request, handler):
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        metrics.request_started()
        try:
            response = await _answer(request, handler)
            route = (
                request.match_info.route.resource.canonical
                if request.match_info.route.resource
                else "unmatched"
            )
            elapsed = time.perf_counter() - started
            metrics.answered(route, request.method, response.status, elapsed)
            if response.status >= 400 and isinstance(response, web.Response) and response.body:
                try:
                    code = json.loads(response.body).get("error", {}).get("code", "unknown")
                except (ValueError, AttributeError):
                    code = "unknown"
                metrics.errors.labels(code).inc()
            response.headers["X-Request-ID"] = request_id
            if route not in ("/healthz", "/readyz", "/metrics") or response.status >= 400:
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

    async def _answer(request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except GatewayError as error:
            return error_response(error.status, error.code, error.message)
        except web.HTTPException as error:
            status = error.status
            code = _HTTP_CODES.get(status, error.reason.lower().replace(" ", "_"))
            message = error.reason
            headers = None
            if status == 413:
                message = f"request body is larger than the limit of {settings.max_request_bytes} bytes"
            if status == 405 and "Allow" in error.headers:
                headers = {"Allow": error.headers["Allow"]}
            return error_response(status, code, message, headers)
        except Exception:
            log.exception("unhandled error")
            return error_response(500, "internal_error", "internal error; see the gateway log")

    async def predict(request: web.Request) -> web.Response:
        image, top_k = await _read_input(request, state)
        scores, version = await _classify(state, image, top_k)
        return web.json_response(scores, headers={"X-Model-Version": str(version)})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        if state["draining"]:
            return error_response(503, "shutting_down", "the gateway is draining after SIGTERM")
        ready, detail = await _readiness(state)
        if not ready:
            return error_response(503, "not_ready", detail)
        return web.json_response({"status": "ready", **detail})

    async def metrics_endpoint(_request: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def startup(app: web.Application) -> None:
        state["model"] = AsyncModelClient(settings)
        state["refresher"] = asyncio.create_task(_refresh_loop(state))

    async def cleanup(app: web.Application) -> None:
        state["refresher"].cancel()
        await state["fetcher"].close()
        await state["model"].close()
        state["pool"].shutdown(wait=False, cancel_futures=True)

    app = web.Application(client_max_size=settings.max_request_bytes, middlewares=[observe])
    app[STATE] = state
    for prefix in ("", settings.url_prefix) if settings.url_prefix else ("",):
        app.router.add_post(prefix + "/predict", predict)
        app.router.add_get(prefix + "/healthz", healthz, allow_head=False)
        app.router.add_get(prefix + "/readyz", readyz, allow_head=False)
        app.router.add_get(prefix + "/metrics", metrics_endpoint, allow_head=False)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


async def _refresh_loop(state: dict) -> None:
    settings = state["settings"]
    while True:
        try:
            await state["model"].refresh_signature()
        except GatewayError as error:
            logging.getLogger("gateway.model").warning(
                "model metadata refresh failed",
                extra={"fields": {"code": error.code, "error": error.message}},
            )
        except Exception:  # keep refreshing whatever happened; the log has the traceback
            logging.getLogger("gateway.model").exception("model metadata refresh crashed")
        await asyncio.sleep(settings.metadata_refresh_seconds)


async def _readiness(state: dict) -> tuple[bool, object]:
    checked_at, result = state["ready"]
    now = time.monotonic()
    if now - checked_at < state["settings"].ready_cache_seconds:
        return result
    try:
        sig = await state["model"].refresh_signature()
        result = (True, {"model_version": sig.version, "input": sig.input_name, "scores": sig.scores_output})
    except GatewayError as error:
        result = (False, error.message)
    state["ready"] = (time.monotonic(), result)
    return result


async def _read_input(request: web.Request, state: dict) -> tuple[bytes, int | None]:
    # Without a Content-Type aiohttp reports application/octet-stream; the API reads such a body
    # as JSON (as it always has), an octet-stream only when the client says so.
    content_type = request.content_type if "Content-Type" in request.headers else ""
    if content_type == "multipart/form-data":
        try:
            form = await request.post()
        except (ValueError, HttpProcessingError) as error:  # no boundary, broken part headers
            raise bad_request(
                "bad_request", f"malformed multipart body: {str(error).strip()[:200]}"
            ) from None
        files = [value for value in form.values() if isinstance(value, web.FileField)]
        upload = (
            form.get("file") if isinstance(form.get("file"), web.FileField) else (files[0] if files else None)
        )
        if upload is None:
            raise bad_request("missing_image", "multipart body has no file part (use the field name 'file')")
        top_k = form.get("top_k")
        return upload.file.read(), _parse_top_k(top_k if isinstance(top_k, str) else None)
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return await request.read(), _parse_top_k(request.query.get("top_k"))

    raw = await request.read()
    try:
        body = json.loads(raw)
    except RecursionError:
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
        return _decode_base64(body["image"]), top_k
    if not isinstance(body["url"], str):
        raise bad_request("invalid_url", "url must be a string")
    metrics = state["metrics"]
    with metrics.stage("fetch"):
        data = await state["fetcher"].fetch(body["url"])
    metrics.fetched_bytes.inc(len(data))
    return data, top_k


async def _classify(state: dict, image: bytes, top_k: int | None) -> tuple[dict[str, float], int]:
    settings, model = state["settings"], state["model"]
    sniff_format(image)  # refuse non-images before asking the model server anything
    signature = await model.signature()
    try:
        scores, model_labels, version = await _predict(state, signature, image)
    except GatewayError as error:
        if error.code not in ("model_rejected_input", "model_bad_response"):
            raise
        fresh = await model.refresh_signature()
        if fresh == signature:
            raise
        scores, model_labels, version = await _predict(state, fresh, image)
    labels = _labels(settings, len(scores), model_labels)
    if settings.apply_softmax:
        scores = softmax(scores)
    return top_scores(labels, scores, top_k), version


def _preprocess(image: bytes, signature: ModelSignature, settings: Settings) -> np.ndarray:
    rgb = decode_resized(image, signature.width, signature.height, settings.max_image_pixels)
    return to_model_input(rgb, signature.input_dtype, settings.preprocessing)


def _small(image: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(image)) as header:
            return header.width * header.height <= _INLINE_PIXELS
    except Exception:  # noqa: BLE001 - decode_resized reports what is wrong with it
        return True


async def _predict(state: dict, signature: ModelSignature, image: bytes):
    settings, metrics = state["settings"], state["metrics"]
    with metrics.stage("decode"):
        if _small(image):
            batch = _preprocess(image, signature, settings)
        else:
            loop = asyncio.get_running_loop()
            batch = await loop.run_in_executor(state["pool"], _preprocess, image, signature, settings)
    with metrics.stage("model"):
        return await state["model"].predict(signature, batch)


def _labels(settings: Settings, count: int, model_labels: list[str] | None) -> list[str]:
    if settings.labels:
        if len(settings.labels) != count:
            raise GatewayError(
                500,
                "labels_mismatch",
                f"LABELS names {len(settings.labels)} classes but the model outputs {count} scores",
            )
        return list(settings.labels)
    if model_labels is not None and len(model_labels) == count:
        return model_labels
    return [f"class_{i}" for i in range(count)]
